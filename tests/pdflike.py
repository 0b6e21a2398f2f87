"""Text shaped like a PDF extraction, made from clean text: for the re-flow tests and bench/reflow.py.

A typesetter for Korean breaks lines at the column width, inside words as often as between them,
and the extracted text loses the space where a line broke between words; every page repeats a
running header and ends with its number.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data" / "reflow"


def hard_wrap(text: str, width: int = 37, page_lines: int = 20, header: str | None = None) -> str:
    """Wrap every line longer than `width` characters at exactly `width` and paginate.

    Table rows (with pipes) are not wrapped; continuation lines lose the line's indentation, as
    extraction does. Each page starts with `header` (when given) and ends with "- N -".
    """
    lines: list[str] = []
    for line in text.strip("\n").split("\n"):
        rest = line
        while len(rest) > width and "|" not in rest:
            lines.append(rest[:width].rstrip())
            rest = rest[width:].lstrip(" ")
        lines.append(rest)
    pages = [lines[i : i + page_lines] for i in range(0, len(lines), page_lines)]
    out = []
    for n, page in enumerate(pages, start=1):
        body = "\n".join(page).strip("\n")
        out.append((f"{header}\n\n" if header else "") + body + f"\n\n- {n} -\n")
    return "\n".join(out)


def paragraphs(text: str) -> list[str]:
    """The non-blank paragraphs of a clean text, in order."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def squash(text: str) -> str:
    return "".join(text.split())
