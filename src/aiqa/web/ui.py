"""Gradio chat and admin tab: a thin layer over Engine; render.py draws the replies as escaped HTML.

The chat's API endpoint is named "ask" (gradio_client: `Client(url).predict(q, api_name="/ask")`);
its history carries follow-ups ("중국은?" after "미국의 AI 반도체는?"). The admin tab uploads and
rebuilds with the same functions as the HTTP API (uploads.py), behind AIQA_API_TOKEN.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Any

from aiqa.engine import Engine
from aiqa.errors import AiqaError
from aiqa.web.render import LABELS, STATIC, esc, notice_html, render_result, report_html

EXAMPLES = [
    "미국의 AI 반도체는?",
    "미국의 제재에 중국은 어떻게 대응하나요?",
    "트럼프 2기 관세정책이 미국 기업에 미칠 영향은?",
    "미국과 중국 AI 경쟁의 중장기 전망은?",
]
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


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # Gradio's normalised form: [{"type": "text", "text": ...}]
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def create_ui(engine: Engine):
    """Build the chat (tab 1) and the token-protected admin tab (tab 2) over one Engine."""
    import gradio as gr

    from aiqa.web.uploads import rebuild, upload_and_rebuild

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
            counts = esc(exc)
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
    # delete_cache: admin uploads land in Gradio's temp folder first; drop them after an hour.
    with gr.Blocks(title=ko["title"], analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        with gr.Row(elem_classes="aiqa-top"):
            head = gr.HTML(header("ko", stats=False), elem_id="aiqa-header")
            lang = gr.Radio(
                [("한국어", "ko"), ("English", "en")],
                value="ko",
                show_label=False,
                container=False,
                elem_id="aiqa-lang",
                scale=0,
                min_width=190,
            )
        with gr.Tabs():
            with gr.Tab(ko["tab_chat"], id="chat") as chat_tab:
                chatbot = gr.Chatbot(
                    elem_id="aiqa-chat",
                    show_label=False,
                    height="calc(100vh - 250px)",
                    min_height=360,
                    layout="bubble",
                    latex_delimiters=[],
                    feedback_options=None,
                    buttons=["copy"],
                    placeholder=ko["placeholder_chat"],
                )
                textbox = gr.Textbox(
                    placeholder=ko["placeholder"],
                    show_label=False,
                    submit_btn=ko["send"],
                    max_lines=6,
                    elem_id="aiqa-input",
                )
                gr.ChatInterface(
                    respond,
                    chatbot=chatbot,
                    textbox=textbox,
                    additional_inputs=[lang],
                    examples=[[q, None] for q in EXAMPLES],
                    api_name="ask",
                    fill_height=False,
                    api_description="Answer a question from the documents; returns the reply as HTML.",
                )
            with gr.Tab(ko["tab_admin"], id="admin") as admin_tab:
                if settings.api_token is None:
                    admin_intro = gr.Markdown(ko["admin_off"])
                    admin_out = token = files = run = None
                else:
                    admin_intro = gr.Markdown(ko["admin_on"])
                    token = gr.Textbox(label=ko["token"], type="password")
                    files = gr.File(label=ko["files"], file_count="multiple", type="filepath", elem_id="aiqa-files")
                    run = gr.Button(ko["run"], variant="primary")
                    admin_out = gr.HTML()
                    run.click(
                        admin,
                        [token, files, lang],
                        admin_out,
                        api_visibility="private",
                        concurrency_limit=1,
                        concurrency_id="admin",
                    )

        def relabel(lang_: str):
            t = LABELS.get(lang_, LABELS["ko"])
            updates = [
                header(lang_),
                gr.update(placeholder=t["placeholder"], submit_btn=t["send"]),
                gr.update(placeholder=t["placeholder_chat"]),
                gr.Tab(label=t["tab_chat"]),
                gr.Tab(label=t["tab_admin"]),
                t["admin_off" if settings.api_token is None else "admin_on"],
            ]
            if run is not None:
                updates += [
                    gr.update(label=t["token"]),
                    gr.update(label=t["files"]),
                    gr.update(value=t["run"]),
                ]
            return updates

        outputs = [head, textbox, chatbot, chat_tab, admin_tab, admin_intro]
        outputs += [c for c in (token, files, run) if c is not None]
        demo.load(None, None, lang, js=LANG_JS, api_visibility="private").then(
            relabel, lang, outputs, api_visibility="private", queue=False
        )
        lang.input(relabel, lang, outputs, api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=CHAT_CONCURRENCY)
    return demo


def mount_ui(app, engine: Engine, path: str = "/"):
    """Mount the chat on a FastAPI app; serves no file but Gradio's own assets."""
    import gradio as gr

    theme = gr.themes.Soft(
        primary_hue="blue",
        neutral_hue="slate",
        font=[
            "Pretendard",
            "Noto Sans KR",
            "Apple SD Gothic Neo",
            "Malgun Gothic",
            "NanumGothic",
            "system-ui",
            "sans-serif",
        ],
    )
    return gr.mount_gradio_app(
        app,
        create_ui(engine),
        path=path,
        theme=theme,
        css=(STATIC / "chat.css").read_text(encoding="utf-8"),
        footer_links=["api", "settings"],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        max_file_size=f"{engine.settings.max_file_mb}mb",
    )
