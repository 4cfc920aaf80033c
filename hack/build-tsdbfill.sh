#!/usr/bin/env bash
# Build hack/tsdbfill (TSDB blocks written straight from a series list, for the 30-day
# catch-up benchmark) once, cached by the Prometheus module version it links and its source.
#   PROMETHEUS_MODULE (v0.316.0: Prometheus 3.16's tsdb), COSTGOV_CACHE (~/.cache/costgov).
# Prints the path of the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${PROMETHEUS_MODULE:-v0.316.0}
CACHE=${COSTGOV_CACHE:-$HOME/.cache/costgov}
SUM=$(sha256sum hack/tsdbfill/main.go | cut -c1-12)
BIN="$CACHE/bin/tsdbfill-prometheus-$VERSION-$SUM/tsdbfill"
if [ ! -x "$BIN" ]; then
  echo "building tsdbfill with github.com/prometheus/prometheus $VERSION (once)" >&2
  work="$CACHE/build/tsdbfill-$VERSION"
  mkdir -p "$work" "$(dirname "$BIN")"
  cp hack/tsdbfill/main.go "$work/main.go"
  printf 'module costgov.local/tsdbfill\n\ngo 1.26.7\n\nrequire github.com/prometheus/prometheus %s\n' \
    "$VERSION" > "$work/go.mod"
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  (cd "$work" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$BIN" .)
fi
echo "$BIN"
