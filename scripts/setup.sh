#!/usr/bin/env bash
# Create .venv at the repo root if missing and install aiqa into it (idempotent, offline-model safe).
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
[ -n "$python" ] || { echo "setup: Python 3.11 is needed: install it and run again" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv

# Re-install only when the dependency list or the extras change.
stamp=".venv/.aiqa-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${extras:-base}"
if [ ! -f "$stamp" ]; then
  pip=(.venv/bin/python -m pip --disable-pip-version-check)
  "${pip[@]}" install --quiet --upgrade pip
  # The CPU build of torch first: left to the resolver, torch comes as a multi-GB CUDA build.
  find_links=()
  [ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
  "${pip[@]}" install --quiet "${find_links[@]}" "torch==2.13.0"
  target="."
  [ -n "$extras" ] && target=".[$extras]"
  "${pip[@]}" install --quiet "${find_links[@]}" -e "$target"
  rm -f .venv/.aiqa-*
  touch "$stamp"
fi

# OCR of scanned PDF pages is optional: say how to turn it on (scripts/test.sh installs it for the tests).
if ! command -v tesseract >/dev/null 2>&1 || [ -z "$(ls /usr/share/tesseract-ocr/*/tessdata/kor.traineddata 2>/dev/null)" ]; then
  echo "setup: scanned PDF pages are skipped until Tesseract OCR is installed (apt-get install tesseract-ocr tesseract-ocr-kor)" >&2
fi
