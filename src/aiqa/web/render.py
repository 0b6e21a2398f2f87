"""Engine answers and build reports as HTML for the chat: escaped first, then our own markup.

Everything that comes from a document (answer text, quotes, passages, file and section names)
goes through html.escape before any markup of ours is added, so a document holding `<script>`
or `<img onerror=...>` shows as text whatever Gradio's own sanitizer does. The HTML is one line
with no blank line, so Markdown leaves it alone as a single raw HTML block.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from aiqa.ingest import SUPPORTED_EXTENSIONS

STATIC = Path(__file__).with_name("static")
# Interface text in Korean and English; {formats} is the list of supported file types.
LABELS: dict[str, dict[str, Any]] = {
    lang: {
        key: value.replace("{formats}", " ".join(SUPPORTED_EXTENSIONS)) if isinstance(value, str) else value
        for key, value in text.items()
    }
    for lang, text in json.loads((STATIC / "ui-labels.json").read_text(encoding="utf-8")).items()
}

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_REF = re.compile(r"\[(\d{1,3})\]")


def esc(text: Any) -> str:
    """Escape text for HTML; line breaks become <br> so the reply stays one line."""
    return html.escape("" if text is None else str(text), quote=True).replace("\r", "").replace("\n", "<br>")


def _inline(escaped: str) -> str:
    """Draw **bold** and [n] markers in text that is already escaped."""
    return _REF.sub(r'<sup class="aiqa-ref">[\1]</sup>', _BOLD.sub(r"<strong>\1</strong>", escaped))


def answer_html(markdown: str) -> str:
    """Escape an answer, then draw its small Markdown subset: paragraphs, '- ' lists, **bold**, [n]."""
    parts: list[str] = []
    items: list[str] = []
    for line in markdown.strip().splitlines():
        text = line.strip()
        if text.startswith(("- ", "* ", "• ")):
            items.append(f"<li>{_inline(esc(text[2:]))}</li>")
            continue
        if items:
            parts.append(f"<ul>{''.join(items)}</ul>")
            items = []
        if text:
            parts.append(f"<p>{_inline(esc(text))}</p>")
    if items:
        parts.append(f"<ul>{''.join(items)}</ul>")
    return "".join(parts)


def highlight(passage: str, quote: str) -> str:
    """The whole passage, escaped, with the quoted part in <mark>."""
    at = passage.find(quote) if quote else -1
    if at < 0:
        return (f"<p><mark>{esc(quote)}</mark></p>" if quote else "") + f"<p>{esc(passage)}</p>"
    end = at + len(quote)
    return f"{esc(passage[:at])}<mark>{esc(quote)}</mark>{esc(passage[end:])}"


def _source(n: Any, item: dict[str, Any], body: str) -> str:
    meta = " · ".join(esc(item.get(key)) for key in ("section", "locator") if item.get(key))
    return (
        f'<li class="aiqa-source"><details><summary><span class="aiqa-n">{esc(n)}</span>'
        f'<span class="aiqa-file">{esc(item.get("source"))}</span>'
        f'<span class="aiqa-meta">{meta}</span></summary>'
        f'<div class="aiqa-passage">{body}</div></details></li>'
    )


def render_result(result: dict[str, Any], lang: str = "ko") -> str:
    """One chat reply: the answer with its numbered sources, or an abstention with related passages.

    A written answer (mode "generated") carries a badge; one that fell back to the quotes, a small note."""
    t = LABELS.get(lang, LABELS["ko"])
    if result["abstained"]:
        headline = result["answer"].strip()
        related = "".join(_source("¶", p, f"<p>{esc(p['text'])}</p>") for p in result.get("related", []))
        box = (
            f'<div class="aiqa-abstain"><div class="aiqa-abstain-title">{esc(headline)}</div>'
            f'<div class="aiqa-abstain-hint">{t["abstain_hint"]}</div></div>'
        )
        if related:
            label = f'<div class="aiqa-label">{t["related"]}</div>'
            box += f'<div class="aiqa-related">{label}<ul>{related}</ul></div>'
        return f'<div class="aiqa-reply aiqa-abstained">{box}</div>'
    generation = result.get("generation") or {}
    top = ""
    if result.get("mode") == "generated":
        top = f'<div class="aiqa-badge">{t["written"]}</div>'
    elif generation.get("fallback"):
        top = f'<div class="aiqa-note">{t["quoted_instead"]}</div>'
    return (
        f'<div class="aiqa-reply">{top}<div class="aiqa-answer">{answer_html(result["answer"])}</div>'
        f"{sources_html(result['citations'], lang)}</div>"
    )


def sources_html(citations: list[dict[str, Any]], lang: str = "ko") -> str:
    """The numbered sources, each passage with its quoted part highlighted."""
    t = LABELS.get(lang, LABELS["ko"])
    items = "".join(_source(c["n"], c, highlight(c.get("passage") or "", c.get("quote") or "")) for c in citations)
    label = f'<div class="aiqa-label">{t["sources"]} · {len(citations)}</div>'
    return f'<div class="aiqa-sources">{label}<ol>{items}</ol></div>'


def writing_html(text: str, extractive: dict[str, Any], lang: str = "ko") -> str:
    """An answer being written: the model's text so far, as plain text (its [n] markers too, as it has
    not been checked yet), above the sources of the quoted answer."""
    t = LABELS.get(lang, LABELS["ko"])
    return (
        f'<div class="aiqa-reply aiqa-writing"><div class="aiqa-writing-label">{t["writing"]}</div>'
        f'<div class="aiqa-draft">{esc(text)}</div>{sources_html(extractive.get("citations", []), lang)}</div>'
    )


def notice_html(message: str, lang: str = "ko") -> str:
    t = LABELS.get(lang, LABELS["ko"])
    return f'<div class="aiqa-reply aiqa-error"><strong>{t["error"]}</strong> {esc(message)}</div>'


def report_html(result: dict[str, Any], lang: str = "ko") -> str:
    """A BuildReport (plus the saved upload names) as a small table for the admin tab."""
    t = LABELS.get(lang, LABELS["ko"])
    r = result["report"]
    counts = "".join(f"<div><b>{esc(r.get(key, 0))}</b><span>{t[key]}</span></div>" for key in t["report_keys"])
    saved = "".join(f"<li>{esc(name)}</li>" for name in result.get("saved", []))
    skipped = "".join(f"<li><code>{esc(s['path'])}</code>: {esc(s['reason'])}</li>" for s in r.get("skipped", []))
    title = f"{t['report_title']} · {esc(r.get('index_version'))}"
    out = f'<div class="aiqa-report"><div class="aiqa-label">{title}</div>'
    out += f'<div class="aiqa-counts">{counts}</div>'
    if saved:
        out += f'<div class="aiqa-label">{t["saved"]}</div><ul>{saved}</ul>'
    if skipped:
        out += f'<div class="aiqa-label">{t["skipped"]}</div><ul>{skipped}</ul>'
    return out + "</div>"
