"""Gradio chat and admin tab: a thin layer over Engine; render.py draws the replies as escaped HTML.

The chat's API endpoint is named "ask" (gradio_client: `Client(url).predict(q, api_name="/ask")`);
its history carries follow-ups ("중국은?" after "미국의 AI 반도체는?"). The admin tab uploads and
rebuilds with the same functions as the HTTP API (uploads.py), behind AIQA_ADMIN_TOKEN, and
takes only files that Gradio itself received (its upload folder), never a path on the server.

Signing in (guard.py): with AIQA_TRUSTED_USER_HEADER set, the proxy's user header (or a bearer
token) opens the chat; otherwise, once AIQA_API_TOKEN is set, Gradio's login form asks for it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiqa.config import Settings
from aiqa.contract import events, health_json, reply_json, writes
from aiqa.engine import Engine
from aiqa.errors import AiqaError
from aiqa.feedback import new_answer_id
from aiqa.web.examples import examples
from aiqa.web.guard import ChatUsers, Throttle
from aiqa.web.idle import quiet_queue
from aiqa.web.limits import Limits
from aiqa.web.page_js import ADMIN_COOKIE_JS, ADMIN_FIELD, LANG_JS
from aiqa.web.ratings import Recorder, rate_liked
from aiqa.web.render import LABELS, STATIC, esc, notice_html, report_html
from aiqa.web.stream import EVERY_S, reply_views
from aiqa.web.tokens import same_secret

log = logging.getLogger("aiqa.web.ui")


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # Gradio's normalised form: [{"type": "text", "text": ...}]
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def recent_questions(history: list[dict[str, Any]], max_items: int, max_chars: int) -> list[str]:
    """The latest user questions of a chat history that fit the history caps, oldest first."""
    kept: list[str] = []
    total = 0
    for message in reversed(history):
        if message.get("role") != "user":
            continue
        text = _text(message)
        if len(kept) == max_items or total + len(text) > max_chars:
            break
        kept.insert(0, text)
        total += len(text)
    return kept


class _Handlers:
    """The chat's and the admin tab's event handlers over one Engine."""

    stream_every = EVERY_S  # seconds between two redraws of an answer being written

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        throttle: Throttle,
        limits: Limits | None = None,
        users: ChatUsers | None = None,
        recorder: Recorder | None = None,
    ):
        self.engine = engine
        self.recorder = recorder
        self.settings = settings
        self.throttle = throttle
        self.limits = limits or Limits.from_settings(settings)
        self.users = users or ChatUsers(settings, throttle)

    def groups(self, request: Any) -> frozenset[str] | None:
        """The asking user's access groups (guard.ChatUsers.groups); without a request, everyone's only."""
        return frozenset() if request is None else self.users.groups(request.request.scope)

    def respond(self, message: str, history: list[dict[str, Any]], lang: str, request: Any = None) -> Iterator[str]:
        """The reply as it forms (stream.py); gradio_client's predict gets the last one, the final answer."""
        s = self.settings
        earlier = recent_questions(history, s.max_history_items, s.max_history_chars)
        try:
            groups = self.groups(request)
            reply = self.engine.ask(message, 5, earlier, groups)
            generator = self.engine.generator
            stream = events(reply, generator) if writes(reply, generator) else None
            result, ident = reply_json(reply), new_answer_id()
            kept = self.recorder is not None and self.recorder.store is not None
            if self.recorder is not None and kept:  # the final answer is kept, for 👍 / 👎 (like)
                if stream is None:
                    self.recorder.keep(ident, result, groups)
                else:
                    stream = self.recorder.events(stream, groups, ident)
            for view in reply_views(result, stream, lang, self.stream_every):
                yield f'<div class="aiqa-rated" data-answer-id="{ident}">{view}</div>' if kept else view
        except AiqaError as exc:
            yield notice_html(str(exc), lang)
        except Exception:  # never an exception's text on the page: it may quote the server's internals
            log.exception("chat question failed: %r", message[:200])
            yield notice_html(LABELS.get(lang, LABELS["ko"])["failed"], lang)

    def refused(self, token: str, lang: str, request: Any = None) -> str | None:
        """The notice for a request without the admin token (a client that keeps guessing is slowed down
        first), or None when the token is right: the one check of every admin action."""
        t = LABELS.get(lang, LABELS["ko"])
        client = self.throttle.client(request.request.scope) if request is not None else "local"
        if wait := self.throttle.blocked(client):
            return notice_html(t["slow_down"].format(seconds=wait), lang)
        if not same_secret(token or "", self.settings.admin_token):
            self.throttle.refused(client)
            return notice_html(t["bad_token"], lang)
        return None

    def report(self, token: str, lang: str, request: Any = None) -> str:
        """The knowledge manager's report (admin token): answers per day, the questions the documents fail."""
        import time

        from aiqa.report import grouped, per_day
        from aiqa.web.report_view import report_html

        refused = self.refused(token, lang, request)
        if refused is not None:
            return refused
        store = self.recorder.store if self.recorder is not None else None
        if store is None:
            return notice_html((self.recorder.failed if self.recorder else None) or "no feedback store", lang)
        try:
            answers = store.answers(since=time.time() - 30 * 86400)
            return report_html(grouped(answers, self.engine.embedder.embed_queries), per_day(answers), lang)
        except AiqaError as exc:
            return notice_html(str(exc), lang)

    def like(self, value: Any, liked: Any) -> None:
        """A 👍 or 👎 on a reply (Gradio's like event)."""
        if self.recorder is not None:
            rate_liked(self.recorder, value, liked)

    def header(self, lang: str, stats: bool = True, request: Any = None) -> str:
        t = LABELS.get(lang, LABELS["ko"])
        try:
            h = health_json(self.engine, self.groups(request)) if stats else None
            counts = t["stats"].format(documents=h["documents"], chunks=h["chunks"]) if h else ""
        except AiqaError as exc:
            counts = esc(exc)
        return (
            f'<div class="aiqa-header"><div class="aiqa-title">{t["title"]}</div>'
            f'<div class="aiqa-subtitle">{t["subtitle"]} <span class="aiqa-stats">{counts}</span></div></div>'
        )

    def admin(self, token: str, files: list[str] | None, lang: str, request: Any = None) -> str:
        """Check the admin token (slowing down a client that guesses), then upload and rebuild."""
        from aiqa.web.uploads import rebuild, upload_and_rebuild, uploaded_files

        refused = self.refused(token, lang, request)
        if refused is not None:
            return refused
        embedder = lambda: self.engine.embedder  # noqa: E731
        try:
            with contextlib.ExitStack() as stack:
                if files:
                    opened = [(p.name, stack.enter_context(p.open("rb"))) for p in uploaded_files(files)]
                    result = upload_and_rebuild(self.settings, opened, embedder)
                else:
                    result = {"saved": [], "report": rebuild(self.settings, embedder)}
        except AiqaError as exc:
            return notice_html(str(exc), lang)
        return report_html(result, lang)


def _chat_tab(gr, handlers: _Handlers):
    from aiqa.web.chatbot import EscapingChatbot

    ko = LABELS["ko"]
    with gr.Tab(ko["tab_chat"], id="chat") as tab:
        chatbot = EscapingChatbot(
            elem_id="aiqa-chat",
            show_label=False,
            height="calc(100vh - 250px)",
            min_height=360,
            layout="bubble",
            latex_delimiters=[],
            feedback_options=("Like", "Dislike"),  # 👍 / 👎 on every reply: the like event, _Handlers.like
            buttons=["copy"],
            placeholder=ko["placeholder_chat"],
            render_markdown=False,  # replies are HTML already; no Markdown links from user text
        )
        textbox = gr.Textbox(
            placeholder=ko["placeholder"],
            show_label=False,
            submit_btn=ko["send"],
            max_lines=6,
            elem_id="aiqa-input",
        )
    return tab, chatbot, textbox


def _admin_tab(gr, handlers: _Handlers, lang):
    """The admin tab; its inputs exist only while AIQA_ADMIN_TOKEN is set."""
    ko = LABELS["ko"]
    with gr.Tab(ko["tab_admin"], id="admin") as tab:
        if handlers.settings.admin_token is None:
            return tab, gr.Markdown(ko["admin_off"]), []
        intro = gr.Markdown(ko["admin_on"])
        token = gr.Textbox(label=ko["token"], type="password", elem_id=ADMIN_FIELD)
        files = gr.File(label=ko["files"], file_count="multiple", type="filepath", elem_id="aiqa-files")
        run = gr.Button(ko["run"], variant="primary")
        show = gr.Button("보고서: 문서가 답하지 못한 질문 / Report", elem_id="aiqa-report-button")
        out = gr.HTML()

        def admin(token: str, files: list[str] | None, lang_: str, request) -> str:
            return handlers.admin(token, files, lang_, request)

        # Gradio passes the request to a parameter typed gr.Request; this module's annotations
        # are strings that cannot name the lazily imported gradio, so the type is set here.
        admin.__annotations__ = {"request": gr.Request}
        run.click(
            admin,
            [token, files, lang],
            out,
            api_visibility="private",
            concurrency_limit=handlers.limits.admin_concurrency,
            concurrency_id="admin",
        )

        def report(token: str, lang_: str, request) -> str:
            return handlers.report(token, lang_, request)

        report.__annotations__ = {"request": gr.Request}
        show.click(report, [token, lang], out, api_visibility="private", concurrency_id="admin")
    return tab, intro, [token, files, run]


def create_ui(
    engine: Engine,
    settings: Settings | None = None,
    throttle: Throttle | None = None,
    limits: Limits | None = None,
    users: ChatUsers | None = None,
    recorder: Recorder | None = None,
):
    """Build the chat (tab 1) and the token-protected admin tab (tab 2) over one Engine."""
    import gradio as gr

    settings = settings or engine.settings
    limits = limits or Limits.from_settings(settings)
    handlers = _Handlers(engine, settings, throttle or Throttle(settings, limits), limits, users, recorder)
    admin_on = settings.admin_token is not None
    ko = LABELS["ko"]
    # delete_cache: admin uploads land in Gradio's temp folder first; drop them after an hour.
    with gr.Blocks(title=ko["title"], analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        with gr.Row(elem_classes="aiqa-top"):
            head = gr.HTML(handlers.header("ko", stats=False), elem_id="aiqa-header")
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
            chat_tab, chatbot, textbox = _chat_tab(gr, handlers)
            with chat_tab:

                def respond(message: str, history: list[dict[str, Any]], lang_: str, request) -> Iterator[str]:
                    yield from handlers.respond(message, history, lang_, request)

                respond.__annotations__ = {"request": gr.Request}  # see _admin_tab
                gr.ChatInterface(
                    respond,
                    chatbot=chatbot,
                    textbox=textbox,
                    additional_inputs=[lang],
                    examples=[[q, None] for q in examples(engine)] or None,
                    api_name="ask",
                    fill_height=False,
                    api_description="Answer a question from the documents; returns the reply as HTML (the final "
                    "one when an LLM server writes it).",
                )

                def liked(data) -> None:
                    handlers.like(data.value, data.liked)

                liked.__annotations__ = {"data": gr.LikeData}
                chatbot.like(liked, None, None, api_visibility="private", queue=False)
            admin_tab, admin_intro, admin_inputs = _admin_tab(gr, handlers, lang)

        def relabel(lang_: str, request):
            t = LABELS.get(lang_, LABELS["ko"])
            updates = [
                handlers.header(lang_, request=request),
                gr.update(placeholder=t["placeholder"], submit_btn=t["send"]),
                gr.update(placeholder=t["placeholder_chat"]),
                gr.Tab(label=t["tab_chat"]),
                gr.Tab(label=t["tab_admin"]),
                t["admin_on" if admin_on else "admin_off"],
            ]
            if admin_inputs:
                updates += [gr.update(label=t["token"]), gr.update(label=t["files"]), gr.update(value=t["run"])]
            return updates

        relabel.__annotations__ = {"request": gr.Request}
        outputs = [head, textbox, chatbot, chat_tab, admin_tab, admin_intro, *admin_inputs]
        demo.load(None, None, lang, js=LANG_JS, api_visibility="private").then(
            relabel, lang, outputs, api_visibility="private", queue=False
        )
        lang.input(relabel, lang, outputs, api_visibility="private", queue=False)
    # max_size: a flood of questions is told "queue full" instead of making real users wait minutes.
    demo.queue(default_concurrency_limit=limits.chat_concurrency, max_size=limits.queue_size)
    quiet_queue(demo)
    return demo


def mount_ui(
    app,
    engine: Engine,
    settings: Settings | None = None,
    users: ChatUsers | None = None,
    throttle: Throttle | None = None,
    path: str = "/",
    limits: Limits | None = None,
    recorder: Recorder | None = None,
):
    """Mount the chat on a FastAPI app behind the sign-in of guard.py; serves no file but Gradio's own assets."""
    import gradio as gr
    from starlette.routing import Mount

    settings = settings or engine.settings
    throttle = throttle or Throttle(settings)
    users = users or ChatUsers(settings, throttle)
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
    sign_in: dict[str, Any] = {}
    if settings.api_token is not None:
        if settings.trusted_user_header:
            sign_in["auth_dependency"] = lambda request: users(request.scope)
        else:
            sign_in["auth"] = users.login
            sign_in["auth_message"] = LABELS["ko"]["login"]
    limits = limits or Limits.from_settings(settings)
    demo = create_ui(engine, settings, throttle, limits, users, recorder)
    # Gradio checks that a file named in a request is one it received (its upload folder) only
    # once `launch()` has run, which a mounted app never calls: without this, a client could
    # name any file on the server and have it copied into the cache and handed to a handler.
    demo.has_launched = True
    gr.mount_gradio_app(
        app,
        demo,
        path=path,
        theme=theme,
        css=(STATIC / "chat.css").read_text(encoding="utf-8"),
        footer_links=["api", "settings"],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        max_file_size=limits.file_bytes,
        js=ADMIN_COOKIE_JS,
        **sign_in,
    )
    gradio_app: Any = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == path.rstrip("/"))
    users.logins = lambda: gradio_app.tokens
    return app
