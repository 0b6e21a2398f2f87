"""The plain layout the chunker reads, written from a reader's blocks (headings, paragraphs, bullets, tables)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_TABLE_CELLS = 100_000  # a crafted table header may claim billions of cells


@dataclass
class Blocks:
    """Blocks in document order, joined as Parsed.text expects: blank lines between blocks, a list's
    bullets on consecutive lines, a table as pipe rows with its first row as header."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def heading(self, level: int, text: str) -> None:
        if text := one_line(text):
            self.items.append(("h", "#" * max(1, min(level, 6)) + " " + text))

    def paragraph(self, text: str) -> None:
        lines = [kept for line in text.split("\n") if (kept := one_line(line))]
        if lines:
            self.items.append(("p", "\n".join(lines)))

    def bullet(self, text: str) -> None:
        if text := one_line(text):
            self.items.append(("li", "- " + text))

    def add(self, kind: str, level: int, text: str) -> None:
        """A paragraph of a word processor by its outline kind: "h" (with its level), "li" or "p"."""
        if kind == "h":
            self.heading(level, text)
        elif kind == "li":
            self.bullet(text)
        else:
            self.paragraph(text)

    def table(self, grid: list[list[str]]) -> None:
        if all(len(row) <= 1 for row in grid):  # a one-column table is a box around text, not a table
            for row in grid:
                self.paragraph(" ".join(row))
            return
        rows = [" | ".join(cell_text(c) for c in row) + " |" for row in grid if any(c.strip() for c in row)]
        if rows:
            self.items.append(("table", "\n".join(rows)))

    def text(self) -> str:
        return join_blocks(self.items)


def join_blocks(items: list[tuple[str, str]]) -> str:
    """Blocks as text: a blank line between blocks, a single break between items of one list."""
    out, previous = "", ""
    for kind, text in items:
        if not text:
            continue
        if out:
            out += "\n" if kind == previous == "li" else "\n\n"
        out += text
        previous = kind
    return out


def one_line(text: str) -> str:
    return " ".join(text.split())


def cell_text(text: str) -> str:
    return one_line(text).replace("|", "/")


def grid(rows: int, cols: int) -> list[list[str]]:
    """An empty rows x cols table, refused past MAX_TABLE_CELLS."""
    if rows < 0 or cols < 0 or rows * cols > MAX_TABLE_CELLS:
        raise ValueError(f"table of {rows} x {cols} cells is over the cap of {MAX_TABLE_CELLS}")
    return [[""] * cols for _ in range(rows)]


def place(table: list[list[str]], row: int, col: int, text: str) -> None:
    """Put a cell's text at its address; a merged cell's text appears once, its other slots stay blank."""
    if 0 <= row < len(table) and 0 <= col < len(table[row]):
        table[row][col] = f"{table[row][col]} {text}".strip()
