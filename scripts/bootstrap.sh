#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the project with the given extras.
# Re-running is cheap: pip is skipped while pyproject.toml is unchanged.
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then py="$c"; break; fi
  done
fi
[ -n "$py" ] || { echo "error: Python 3.11+ is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.installed-${extras:-base}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch is pinned in pyproject.toml (CPU build); install it first so nothing
  # else resolves an unpinned torch with the multi-GB CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  spec="."
  [ -n "$extras" ] && spec=".[${extras}]"
  .venv/bin/python -m pip install --quiet -e "$spec"
  echo "$want" > "$stamp"
fi
