"""The admin tab's report: answered / refused / disliked per day as bars, then the questions the documents fail.

The same figures as `aiqa report` (aiqa.report), drawn as escaped HTML for the knowledge manager.
"""

from __future__ import annotations

from typing import Any

from aiqa.report import Group
from aiqa.web.render import esc

TEXT: dict[str, dict[str, Any]] = {
    "ko": {
        "days": "일별 답변",
        "answered": "답변",
        "refused": "답 없음",
        "disliked": "👎",
        "groups": "문서가 답하지 못한 질문 (비슷한 질문끼리, 많은 순)",
        "none": "아직 기록된 답변이 없습니다.",
        "from": "찾은 문단",
        "also": "비슷한 질문",
        "why": {"refused": "답 없음", "low confidence": "낮은 확신", "disliked": "👎"},
    },
    "en": {
        "days": "Answers per day",
        "answered": "answered",
        "refused": "refused",
        "disliked": "👎",
        "groups": "Questions the documents fail (similar ones together, most frequent first)",
        "none": "No answers recorded yet.",
        "from": "passages from",
        "also": "also asked",
        "why": {"refused": "refused", "low confidence": "low confidence", "disliked": "👎"},
    },
}
COLOURS = {"answered": "#2e7d32", "refused": "#e0a100", "disliked": "#d64545"}


def report_html(groups: list[Group], days: list[dict[str, Any]], lang: str = "ko", limit: int = 30) -> str:
    t = TEXT.get(lang, TEXT["ko"])
    if not days:
        return f'<div class="aiqa-report"><p>{t["none"]}</p></div>'
    top = max(1, max(d["answered"] + d["refused"] for d in days))
    rows = []
    for d in days[-30:]:
        bars = "".join(
            f'<span title="{t[k]} {d[k]}" style="display:inline-block;height:12px;width:{200 * d[k] / top:.1f}px;'
            f'background:{COLOURS[k]}"></span>'
            for k in ("answered", "refused", "disliked")
        )
        counts = " · ".join(f"{t[k]} {d[k]}" for k in ("answered", "refused", "disliked"))
        rows.append(f"<tr><td>{esc(d['day'])}</td><td>{bars}</td><td>{counts}</td></tr>")
    parts = [
        f'<div class="aiqa-report"><h4>{t["days"]}</h4><table>{"".join(rows)}</table>',
        f"<h4>{t['groups']}</h4><ol>",
    ]
    for g in groups[:limit]:
        data = g.as_json()
        why = ", ".join(f"{t['why'].get(k, k)} {v}" for k, v in data["why"].items())
        item = f"<li><b>{esc(data['question'])}</b> × {data['count']} ({esc(why)})"
        if data["also"]:
            item += f"<br><small>{t['also']}: {esc(' / '.join(data['also'][:3]))}</small>"
        if data["passages_from"]:
            item += f"<br><small>{t['from']}: {esc(', '.join(data['passages_from']))}</small>"
        for comment in data["comments"][:3]:
            item += f"<br><small>“{esc(comment)}”</small>"
        parts.append(item + "</li>")
    return "".join(parts) + "</ol></div>"
