#!/usr/bin/env bash
# Set up .venv with the test extras and the headless browser the UI tests drive, then run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser),
# fonts so that Korean PDFs and scans can be generated and screenshots are legible, and Tesseract
# with its Korean model for the OCR of scanned PDFs (tests/test_ocr.py).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
[ -n "$(ls /usr/share/tesseract-ocr/*/tessdata/kor.traineddata 2>/dev/null)" ] || missing+=(tesseract-ocr-kor)
fc-list :lang=ko 2>/dev/null | grep -q . || missing+=(fonts-nanum)
# PostgreSQL's server, which tests/test_feedback.py starts for the feedback store on PostgreSQL.
[ -n "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null)" ] || missing+=(postgresql)
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test: missing ${missing[*]}: install them (sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
fi
# Two workers (pytest-xdist, one per core), each test group on one (tests/README.md: the shared
# processes); AIQA_TEST_WORKERS=0 runs every test in this one process.
exec .venv/bin/python -m pytest -n "${AIQA_TEST_WORKERS:-2}" "$@"
