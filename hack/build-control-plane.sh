#!/usr/bin/env bash
# Build kube-apiserver and etcd from their Go modules into a versioned cache, once.
# Reused by later runs: nothing is rebuilt when the binaries of these versions exist.
#   KUBE_VERSION (default v1.36.3), ETCD_VERSION (default v3.6.16),
#   COSTGOV_CACHE (default ~/.cache/costgov)
set -euo pipefail
KUBE_VERSION=${KUBE_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CACHE=${COSTGOV_CACHE:-$HOME/.cache/costgov}
BIN="$CACHE/bin/kube-$KUBE_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$BIN"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

staging_version="v0.${KUBE_VERSION#v1.}"  # v1.36.3 -> v0.36.3

build_apiserver() {
  local work="$CACHE/build/kube-apiserver-$KUBE_VERSION"
  mkdir -p "$work"
  cat > "$work/main.go" <<'GO'
// A wrapper around the upstream kube-apiserver command (k8s.io/kubernetes is a Go module
// whose staging modules are pinned at v0.0.0; go.mod replaces them with released ones).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
  local upstream
  upstream=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module costgov.local/kube-apiserver"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream" \
      | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$work/go.mod"
  (cd "$work" && go mod tidy && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)" \
    -o "$BIN/kube-apiserver" .)
}

build_etcd() {
  local work="$CACHE/build/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  cat > "$work/main.go" <<'GO'
// A wrapper around the upstream etcd server command.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module costgov.local/etcd\n\ngo 1.25.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" > "$work/go.mod"
  (cd "$work" && go mod tidy && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
    -o "$BIN/etcd" .)
}

[ -x "$BIN/etcd" ] || { echo "building etcd $ETCD_VERSION (once)" >&2; build_etcd; }
[ -x "$BIN/kube-apiserver" ] || { echo "building kube-apiserver $KUBE_VERSION (once)" >&2; build_apiserver; }
echo "$BIN"
