"""Entry point for the web app: build the app from aiqa and launch it, the same as `aiqa serve`.

    python app.py [--host 0.0.0.0] [--port 7860] [--corpus DIR] [--index DIR]

Paths, limits, AIQA_ALLOWED_ORIGINS and AIQA_API_TOKEN come from the AIQA_* environment
variables (see src/aiqa/config.py); the index is brought up to date before serving.
"""

from __future__ import annotations

import sys

from aiqa.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
