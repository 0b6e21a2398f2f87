"""OCR of scanned pages with Tesseract and its Korean model, when the machine has them.

Tesseract is optional at run time: `missing()` says what to install when the program or its
Korean model is absent, and the PDF reader then skips the scanned pages with that reason. It
runs in the reader's worker process (so AIQA_READ_TIMEOUT bounds a whole file) and each image
is also bounded on its own, so a stopped worker leaves no Tesseract running for long.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

INSTALL_HINT = (
    "install Tesseract OCR with its Korean model (Debian/Ubuntu: apt-get install tesseract-ocr tesseract-ocr-kor)"
)
LANGUAGES = "kor+eng"
# Page segmentation "a single column of text of variable sizes": Tesseract's automatic layout (3)
# loses most lines of a sparse Korean page (measured on tests' scan: 5 of 45 characters vs all).
# A two-column scan is read across its columns.
CONFIG = "--psm 4"
IMAGE_TIMEOUT_S = 60
MAX_PIXELS = 60_000_000  # an A4 page at 600 dpi is 35 M pixels
MIN_SIDE = 1200  # a page image smaller than this is enlarged: Tesseract reads ~300 dpi best
# Tesseract's threads compete with the embedder on a small machine; one each reads as fast per page.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


@functools.cache
def missing() -> str | None:
    """None when OCR can run; else why not and what to install."""
    try:
        import pytesseract
    except ImportError:
        return "the pytesseract package is missing (pip install pytesseract), and " + INSTALL_HINT
    # AIQA_TESSERACT names the program when it is not on PATH (e.g. a Windows install).
    pytesseract.pytesseract.tesseract_cmd = os.environ.get("AIQA_TESSERACT") or "tesseract"
    try:
        languages = set(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, OSError):
        return "Tesseract is not installed: " + INSTALL_HINT
    except pytesseract.TesseractError:
        return "Tesseract does not run: " + INSTALL_HINT
    if "kor" not in languages:
        return "Tesseract has no Korean model: install tesseract-ocr-kor (apt-get install tesseract-ocr-kor)"
    return None


def _prepared(image: Any) -> Any:
    from PIL import Image

    if image.width * image.height > MAX_PIXELS:
        scale = (MAX_PIXELS / (image.width * image.height)) ** 0.5
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    elif max(image.width, image.height) < MIN_SIDE:
        scale = MIN_SIDE / max(image.width, image.height, 1)
        image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
    return image.convert("L") if image.mode not in ("L", "RGB") else image


def _tidy(text: str) -> str:
    """Tesseract's lines as paragraphs: blank lines kept between them, stray whitespace dropped."""
    lines = [" ".join(line.split()) for line in text.replace("\r", "").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def image_text(image: Any) -> str:
    """The text Tesseract reads in one image (PIL), in Korean and English."""
    import pytesseract

    try:
        text = pytesseract.image_to_string(_prepared(image), lang=LANGUAGES, config=CONFIG, timeout=IMAGE_TIMEOUT_S)
    except RuntimeError:  # pytesseract's "Tesseract process timeout"
        return ""
    return _tidy(text)
