#!/usr/bin/env bash
# Build what the simulated GPU cluster runs beyond etcd and kube-apiserver, once, cached by
# version: kube-scheduler and kube-controller-manager (the kube-apiserver wrapper module of
# hack/build-control-plane.sh), kwok with the stage files its module ships, and
# kube-state-metrics (a wrapper module: `go install` of it is refused by the proxy here).
#   KUBE_VERSION (v1.36.3), KWOK_VERSION (v0.8.0), KSM_VERSION (v2.20.0),
#   COSTGOV_CACHE (~/.cache/costgov). Prints the directory holding the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBE_VERSION=${KUBE_VERSION:-v1.36.3}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
KSM_VERSION=${KSM_VERSION:-v2.20.0}
CACHE=${COSTGOV_CACHE:-$HOME/.cache/costgov}
BIN="$CACHE/bin/sim-kube-$KUBE_VERSION-kwok-$KWOK_VERSION-ksm-$KSM_VERSION"
mkdir -p "$BIN"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

# kube-scheduler and kube-controller-manager: commands beside the apiserver's wrapper main,
# so the go.mod with its staging replace block (and the build cache) is shared.
build_kube_component() {  # name import-path constructor
  local name=$1 pkg=$2 ctor=$3
  bash hack/build-control-plane.sh >/dev/null  # the wrapper module exists after this
  local work="$CACHE/build/kube-apiserver-$KUBE_VERSION"
  mkdir -p "$work/cmd/$name"
  cat > "$work/cmd/$name/main.go" <<GO
// A wrapper around the upstream $name command.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"$pkg"
)

func main() { os.Exit(cli.Run(app.$ctor())) }
GO
  (cd "$work" && go mod tidy && go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)" \
    -o "$BIN/$name" "./cmd/$name")
}

build_kwok() {
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # The standalone binary has no default stages (kwokctl injects them): keep the module's.
  local mod
  mod=$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION
  mkdir -p "$BIN/kwok-stages"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-delete.yaml pod/general/pod-complete.yaml; do
    cp "$mod/kustomize/stage/$f" "$BIN/kwok-stages/$(echo "$f" | tr / -)"
  done
  chmod u+w "$BIN"/kwok-stages/*
}

build_ksm() {
  local work="$CACHE/build/kube-state-metrics-$KSM_VERSION"
  mkdir -p "$work"
  printf 'module costgov.local/ksm\n\ngo 1.25.0\n\nrequire k8s.io/kube-state-metrics/v2 %s\n\ntool k8s.io/kube-state-metrics/v2\n' \
    "$KSM_VERSION" > "$work/go.mod"
  (cd "$work" && go mod tidy && go build -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${KSM_VERSION#v}" \
    -o "$BIN/kube-state-metrics" k8s.io/kube-state-metrics/v2)
}

[ -x "$BIN/kwok" ] && [ -d "$BIN/kwok-stages" ] || { echo "building kwok $KWOK_VERSION (once)" >&2; build_kwok; }
[ -x "$BIN/kube-state-metrics" ] || { echo "building kube-state-metrics $KSM_VERSION (once)" >&2; build_ksm; }
[ -n "${SIM_SKIP_KUBE:-}" ] && { echo "$BIN"; exit 0; }  # kwok and kube-state-metrics only
[ -x "$BIN/kube-scheduler" ] || { echo "building kube-scheduler $KUBE_VERSION (once)" >&2;
  build_kube_component kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler/app NewSchedulerCommand; }
[ -x "$BIN/kube-controller-manager" ] || { echo "building kube-controller-manager $KUBE_VERSION (once)" >&2;
  build_kube_component kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager/app NewControllerManagerCommand; }
echo "$BIN"
