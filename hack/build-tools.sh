#!/usr/bin/env bash
# Install helm and kubeconform with `go install` into a versioned cache, once.
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-v3.22.0}
KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-v0.8.0}
CACHE=${COSTGOV_CACHE:-$HOME/.cache/costgov}
BIN="$CACHE/bin/tools-helm-$HELM_VERSION-kubeconform-$KUBECONFORM_VERSION"
mkdir -p "$BIN"
export GOBIN="$BIN" GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
[ -x "$BIN/helm" ] || { echo "installing helm $HELM_VERSION (once)" >&2;
  go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; }
[ -x "$BIN/kubeconform" ] || { echo "installing kubeconform $KUBECONFORM_VERSION (once)" >&2;
  go install -trimpath -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"; }
echo "$BIN"
