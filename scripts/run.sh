#!/usr/bin/env bash
# Set up .venv, build the index if it is missing or stale, and start the web app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/aiqa serve "$@"
