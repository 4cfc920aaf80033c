#!/usr/bin/env bash
# Everything the test tiers need beyond Python packages, installed once:
#   Prometheus + promtool (Debian's package), kube-apiserver + etcd (built from Go modules),
#   helm + kubeconform (go install), the FOCUS validator (its own venv). Cached builds are reused; cold: about 10-20 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  echo "== installing Prometheus from Debian's packages" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prometheus >/dev/null
fi
command -v go >/dev/null || { echo "Go is needed to build the e2e control plane" >&2; exit 1; }
t=$(date +%s)
bash hack/build-control-plane.sh >/dev/null
bash hack/build-tools.sh >/dev/null
bash hack/build-sim.sh >/dev/null
bash hack/install-focus-validator.sh >/dev/null
echo "== prerequisites ready ($(prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3); control plane and tools in $(( $(date +%s) - t ))s)" >&2
