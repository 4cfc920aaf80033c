#!/usr/bin/env bash
# The FinOps Foundation's FOCUS validator (PyPI focus-validator 1.0.0, the newest release; it
# knows FOCUS 0.5, 1.0-preview and 1.0, not 1.1 or 1.2) in its own virtual environment: it
# pins numpy<2 and pytz<2024, and 1.0.0 needs multimethod<2 (2.x removed `overload`, which
# its pandera 0.17 imports). About 400 MB, cached; tests/integration/test_api_spend.py runs it.
set -euo pipefail
dest="${COSTGOV_CACHE:-$HOME/.cache/costgov}/focus-validator-1.0.0"
if [ ! -x "$dest/bin/focus-validator" ] || [ ! -f "$dest/.complete" ]; then
  echo "== installing focus-validator 1.0.0 into $dest" >&2
  rm -rf "$dest"
  python3 -m venv "$dest"
  "$dest/bin/pip" install --quiet --upgrade pip
  "$dest/bin/pip" install --quiet "focus-validator==1.0.0" "multimethod<2"
  touch "$dest/.complete"
fi
echo "$dest/bin/focus-validator"
