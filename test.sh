#!/usr/bin/env bash
# Set up everything the tests need and run them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh test
# The browser tests drive Debian's Chromium; install it when we can (root + apt).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
fi
# axe-core (npm) for the browser tests' accessibility check, pinned by tests/js/package-lock.json.
if command -v npm >/dev/null; then
  if [ ! -f tests/js/node_modules/axe-core/axe.min.js ] || [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; then
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
  fi
else
  echo "warning: npm not found; the accessibility check (axe-core) will be skipped" >&2
fi
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false
# The layer contracts in pyproject.toml (the engine imports no face, faces do not
# import each other, engine layers run one way, no cycles).
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest "$@"
