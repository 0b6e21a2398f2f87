#!/usr/bin/env bash
# Set up .venv with the test extras, the headless browser the UI tests drive, and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Debian's chromium for the browser tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: chromium is missing (sudo apt-get install chromium); browser tests will be skipped" >&2
  fi
fi
exec .venv/bin/python -m pytest "$@"
