"""Gradio chat and admin tab: a thin layer that draws Engine answers as escaped HTML.

Everything that comes from a document (answer text, quotes, passages, file and section names)
goes through html.escape before any markup of ours is added, so a document holding `<script>`
or `<img onerror=...>` shows as text whatever Gradio's own sanitizer does. The HTML is one line
with no blank line, so Markdown leaves it alone as a single raw HTML block.
"""

from __future__ import annotations

import contextlib
import html
import re
import secrets
from pathlib import Path
from typing import Any

from aiqa.engine import Engine
from aiqa.errors import AiqaError
from aiqa.ingest import SUPPORTED_EXTENSIONS

STATIC = Path(__file__).with_name("static")
EXAMPLES = [
    "미국의 AI 반도체는?",
    "미국의 제재에 중국은 어떻게 대응하나요?",
    "트럼프 2기 관세정책이 미국 기업에 미칠 영향은?",
    "미국과 중국 AI 경쟁의 중장기 전망은?",
]
_FORMATS = " ".join(SUPPORTED_EXTENSIONS)
LABELS: dict[str, dict[str, Any]] = {
    "ko": {
        "title": "사내 문서 도우미",
        "subtitle": "사내 문서에서 답을 찾아 근거 문단과 함께 보여 드립니다.",
        "stats": "문서 {documents}개 · 문단 {chunks}개",
        "tab_chat": "질문하기",
        "tab_admin": "문서 관리",
        "placeholder": "문서에 대해 질문하세요. 예: 미국의 AI 반도체는?",
        "placeholder_chat": "**무엇이든 물어보세요**\n\n답변마다 근거가 된 문서와 문단을 번호로 보여 드립니다.",
        "send": "보내기",
        "sources": "출처",
        "related": "관련 문단",
        "abstain_hint": "질문을 바꾸거나 더 구체적으로 물어보세요. 아래는 질문과 가장 가까운 문단입니다.",
        "error": "질문을 처리하지 못했습니다.",
        "admin_off": "### 문서 관리가 꺼져 있습니다\n서버를 시작할 때 `AIQA_API_TOKEN` 환경 변수에 관리 토큰을 "
        "설정하면 이 탭에서 문서를 올리고 색인을 갱신할 수 있습니다 (HTTP API의 `POST /api/documents`, "
        "`POST /api/index`도 같은 토큰을 씁니다).",
        "admin_on": "### 문서 올리기와 색인 갱신\n관리 토큰을 입력하고 문서를 올리면 문서 폴더에 저장한 뒤 "
        f"색인을 갱신합니다. 파일 없이 실행하면 문서 폴더를 다시 읽어 색인만 갱신합니다. 지원 형식: {_FORMATS}",
        "token": "관리 토큰 (AIQA_API_TOKEN)",
        "files": "문서 파일",
        "run": "올리고 색인 갱신",
        "bad_token": "관리 토큰이 맞지 않습니다.",
        "report_title": "색인 갱신 결과",
        "saved": "저장한 파일",
        "skipped": "건너뛴 파일",
        "report_keys": ("added", "updated", "removed", "unchanged", "chunks"),
        "added": "추가",
        "updated": "변경",
        "removed": "삭제",
        "unchanged": "그대로",
        "chunks": "전체 문단",
    },
    "en": {
        "title": "Company documents assistant",
        "subtitle": "Answers come from the company's documents, each with its numbered sources.",
        "stats": "{documents} documents · {chunks} passages",
        "tab_chat": "Ask",
        "tab_admin": "Documents",
        "placeholder": "Ask about the documents, e.g. What AI chips does the US have?",
        "placeholder_chat": "**Ask anything**\n\nEvery answer shows the documents and passages it comes from.",
        "send": "Send",
        "sources": "Sources",
        "related": "Related passages",
        "abstain_hint": "Try rephrasing or asking more specifically. The closest passages are below.",
        "error": "The question could not be answered.",
        "admin_off": "### Document management is off\nStart the server with `AIQA_API_TOKEN` set to enable "
        "uploads and rebuilds here (the HTTP API's `POST /api/documents` and `POST /api/index` use the same token).",
        "admin_on": "### Upload documents and update the index\nEnter the admin token and upload documents: they "
        f"are saved to the corpus folder and the index is updated. Without files, only the index is updated. "
        f"Formats: {_FORMATS}",
        "token": "Admin token (AIQA_API_TOKEN)",
        "files": "Documents",
        "run": "Upload and update the index",
        "bad_token": "Wrong admin token.",
        "report_title": "Index update",
        "saved": "Saved files",
        "skipped": "Skipped files",
        "report_keys": ("added", "updated", "removed", "unchanged", "chunks"),
        "added": "added",
        "updated": "updated",
        "removed": "removed",
        "unchanged": "unchanged",
        "chunks": "passages in total",
    },
}
# Korean unless the page asks for English (?lang=en) or the browser's first language is English.
LANG_JS = """() => {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "ko") return asked;
  const first = ((navigator.languages && navigator.languages[0]) || navigator.language || "").toLowerCase();
  return first.startsWith("en") ? "en" : "ko";
}"""

# Chat questions answered at once. One costs 0.1-0.6 s of CPU (query embedding + keyword search)
# and torch already spreads one embedding over both cores of the 2-core box, so more parallel
# calls only slow each other down; the queue keeps the rest in order and shows their position.
# The HTTP API has its own limit of 2 (server.py), so at most 4 questions run at once.
CHAT_CONCURRENCY = 2

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_REF = re.compile(r"\[(\d{1,3})\]")


def _esc(text: Any) -> str:
    return html.escape(str(text or ""), quote=True).replace("\r", "").replace("\n", "<br>")


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
            items.append(f"<li>{_inline(_esc(text[2:]))}</li>")
            continue
        if items:
            parts.append(f"<ul>{''.join(items)}</ul>")
            items = []
        if text:
            parts.append(f"<p>{_inline(_esc(text))}</p>")
    if items:
        parts.append(f"<ul>{''.join(items)}</ul>")
    return "".join(parts)


def highlight(passage: str, quote: str) -> str:
    """The whole passage, escaped, with the quoted part in <mark>."""
    at = passage.find(quote) if quote else -1
    if at < 0:
        return (f"<p><mark>{_esc(quote)}</mark></p>" if quote else "") + f"<p>{_esc(passage)}</p>"
    end = at + len(quote)
    return f"{_esc(passage[:at])}<mark>{_esc(quote)}</mark>{_esc(passage[end:])}"


def _source(n: Any, item: dict[str, Any], body: str) -> str:
    meta = " · ".join(_esc(item.get(key)) for key in ("section", "locator") if item.get(key))
    return (
        f'<li class="aiqa-source"><details><summary><span class="aiqa-n">{_esc(n)}</span>'
        f'<span class="aiqa-file">{_esc(item.get("source"))}</span>'
        f'<span class="aiqa-meta">{meta}</span></summary><div class="aiqa-passage">{body}</div></details></li>'
    )


def render_result(result: dict[str, Any], lang: str = "ko") -> str:
    """One chat reply: the answer with its numbered sources, or an abstention with related passages."""
    t = LABELS.get(lang, LABELS["ko"])
    if result["abstained"]:
        # The engine's answer lists the related passages too; they are drawn below as expandable items.
        headline = result["answer"].strip().split("\n\n")[0]
        related = "".join(_source("¶", p, f"<p>{_esc(p['text'])}</p>") for p in result["passages"][:3])
        box = (
            f'<div class="aiqa-abstain"><div class="aiqa-abstain-title">{_esc(headline)}</div>'
            f'<div class="aiqa-abstain-hint">{t["abstain_hint"]}</div></div>'
        )
        if related:
            box += f'<div class="aiqa-related"><div class="aiqa-label">{t["related"]}</div><ul>{related}</ul></div>'
        return f'<div class="aiqa-reply aiqa-abstained">{box}</div>'
    sources = "".join(_source(c["n"], c, highlight(c.get("passage") or "", c.get("quote") or "")) for c in result["citations"])
    label = f'<div class="aiqa-label">{t["sources"]} · {len(result["citations"])}</div>'
    return (
        f'<div class="aiqa-reply"><div class="aiqa-answer">{answer_html(result["answer"])}</div>'
        f'<div class="aiqa-sources">{label}<ol>{sources}</ol></div></div>'
    )


def notice_html(message: str, lang: str = "ko") -> str:
    t = LABELS.get(lang, LABELS["ko"])
    return f'<div class="aiqa-reply aiqa-error"><strong>{t["error"]}</strong> {_esc(message)}</div>'


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # Gradio's normalised form: [{"type": "text", "text": ...}]
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def report_html(result: dict[str, Any], lang: str = "ko") -> str:
    """A BuildReport (plus the saved upload names) as a small table for the admin tab."""
    t = LABELS.get(lang, LABELS["ko"])
    r = result["report"]
    counts = "".join(f"<tr><th>{t[key]}</th><td>{_esc(r.get(key, 0))}</td></tr>" for key in t["report_keys"])
    saved = "".join(f"<li>{_esc(name)}</li>" for name in result.get("saved", []))
    skipped = "".join(f"<li><code>{_esc(s['path'])}</code>: {_esc(s['reason'])}</li>" for s in r.get("skipped", []))
    out = f'<div class="aiqa-report"><div class="aiqa-label">{t["report_title"]} · {_esc(r.get("index_version"))}</div>'
    out += f"<table>{counts}</table>"
    if saved:
        out += f'<div class="aiqa-label">{t["saved"]}</div><ul>{saved}</ul>'
    if skipped:
        out += f'<div class="aiqa-label">{t["skipped"]}</div><ul>{skipped}</ul>'
    return out + "</div>"


def create_ui(engine: Engine):
    """Build the chat (tab 1) and the token-protected admin tab (tab 2) over one Engine."""
    import gradio as gr

    from aiqa.uploads import rebuild, upload_and_rebuild

    settings = engine.settings

    def respond(message: str, history: list[dict[str, Any]], lang: str) -> str:
        earlier = [_text(m) for m in history if m.get("role") == "user"]
        try:
            return render_result(engine.ask_json(message, 5, earlier), lang)
        except AiqaError as exc:
            return notice_html(str(exc), lang)

    def header(lang: str, stats: bool = True) -> str:
        t = LABELS.get(lang, LABELS["ko"])
        try:
            h = engine.health() if stats else None
            counts = t["stats"].format(documents=h["documents"], chunks=h["chunks"]) if h else ""
        except AiqaError as exc:
            counts = _esc(exc)
        return (
            f'<div class="aiqa-header"><div class="aiqa-title">{t["title"]}</div>'
            f'<div class="aiqa-subtitle">{t["subtitle"]} <span class="aiqa-stats">{counts}</span></div></div>'
        )

    def admin(token: str, files: list[str] | None, lang: str) -> str:
        expected = settings.api_token
        if expected is None or not secrets.compare_digest((token or "").encode(), expected.encode()):
            return notice_html(LABELS.get(lang, LABELS["ko"])["bad_token"], lang)
        try:
            with contextlib.ExitStack() as stack:
                if files:
                    opened = [(Path(f).name, stack.enter_context(open(f, "rb"))) for f in files]
                    result = upload_and_rebuild(settings, opened, lambda: engine.embedder)
                else:
                    result = {"saved": [], "report": rebuild(settings, lambda: engine.embedder)}
        except AiqaError as exc:
            return notice_html(str(exc), lang)
        return report_html(result, lang)

    ko = LABELS["ko"]
    with gr.Blocks(title=ko["title"], analytics_enabled=False) as demo:
        with gr.Row(elem_classes="aiqa-top"):
            head = gr.HTML(header("ko", stats=False), elem_id="aiqa-header")
            lang = gr.Radio([("한국어", "ko"), ("English", "en")], value="ko", show_label=False, container=False,
                            elem_id="aiqa-lang", scale=0, min_width=190)
        with gr.Tabs():
            with gr.Tab(ko["tab_chat"], id="chat") as chat_tab:
                chatbot = gr.Chatbot(
                    elem_id="aiqa-chat", show_label=False, height="64vh", layout="bubble", latex_delimiters=[],
                    feedback_options=None, buttons=["copy"], placeholder=ko["placeholder_chat"],
                )
                textbox = gr.Textbox(placeholder=ko["placeholder"], show_label=False, submit_btn=ko["send"],
                                     max_lines=6, elem_id="aiqa-input")
                gr.ChatInterface(
                    respond, chatbot=chatbot, textbox=textbox, additional_inputs=[lang],
                    examples=[[q, None] for q in EXAMPLES], api_name="ask", fill_height=False,
                    api_description="Answer a question from the documents; returns the reply as HTML.",
                )
            with gr.Tab(ko["tab_admin"], id="admin") as admin_tab:
                if settings.api_token is None:
                    admin_intro = gr.Markdown(ko["admin_off"])
                    admin_out = token = files = run = None
                else:
                    admin_intro = gr.Markdown(ko["admin_on"])
                    token = gr.Textbox(label=ko["token"], type="password")
                    files = gr.File(label=ko["files"], file_count="multiple", type="filepath")
                    run = gr.Button(ko["run"], variant="primary")
                    admin_out = gr.HTML()
                    run.click(admin, [token, files, lang], admin_out, api_visibility="private",
                              concurrency_limit=1, concurrency_id="admin")

        def relabel(lang_: str):
            t = LABELS.get(lang_, LABELS["ko"])
            updates = [header(lang_), gr.update(placeholder=t["placeholder"], submit_btn=t["send"]),
                       gr.update(placeholder=t["placeholder_chat"]), gr.Tab(label=t["tab_chat"]),
                       gr.Tab(label=t["tab_admin"]), t["admin_off" if settings.api_token is None else "admin_on"]]
            if run is not None:
                updates += [gr.update(label=t["token"]), gr.update(label=t["files"]), gr.update(value=t["run"])]
            return updates

        outputs = [head, textbox, chatbot, chat_tab, admin_tab, admin_intro]
        outputs += [c for c in (token, files, run) if c is not None]
        demo.load(None, None, lang, js=LANG_JS, api_visibility="private").then(
            relabel, lang, outputs, api_visibility="private", queue=False)
        lang.input(relabel, lang, outputs, api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=CHAT_CONCURRENCY)
    return demo


def mount_ui(app, engine: Engine, path: str = "/"):
    """Mount the chat on a FastAPI app; serves no file but Gradio's own assets."""
    import gradio as gr

    theme = gr.themes.Soft(
        primary_hue="blue", neutral_hue="slate",
        font=["Pretendard", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic", "NanumGothic", "system-ui",
              "sans-serif"],
    )
    return gr.mount_gradio_app(
        app, create_ui(engine), path=path, theme=theme, css=(STATIC / "chat.css").read_text(encoding="utf-8"), footer_links=["api", "settings"],
        run_history=False, ssr_mode=False, mcp_server=False, pwa=False,
        max_file_size=f"{engine.settings.max_file_mb}mb",
    )
