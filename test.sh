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
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false
# The layer contracts in pyproject.toml (the engine imports no face, faces do not
# import each other, engine layers run one way, no cycles).
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest "$@"
