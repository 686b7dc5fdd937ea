#!/usr/bin/env bash
# Set up everything the tests need and run them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh test
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
