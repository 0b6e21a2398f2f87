"""A real headless Chromium on the chat, the widget on a portal of another origin, and hostile documents.

Set AIQA_SCREENSHOTS=1 to write docs/chat.png and docs/widget.png from the run.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import ADMIN, REPO, REPORT, TOKEN, engine_over, free_port
from tests.test_server import ThreadedServer

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = os.environ.get("AIQA_SCREENSHOTS") == "1"
XSS_DOC = """피싱 메일 주의 안내
정보보안팀은 최근 사내에 유포된 피싱 메일의 특징을 안내합니다.
피싱 메일 본문에는 <img src=x onerror="window.__xss=1"> 같은 이미지 태그가 숨어 있습니다.
일부 메일에는 <script>window.__xss=1</script> 스크립트 코드가 포함되어 있습니다.
의심스러운 메일은 열지 말고 정보보안팀에 신고하세요.
"""
IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=1</script>"
WIDGET = "[data-aiqa-widget]"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(report_settings, embedder, tmp_path_factory):
    """The app on 127.0.0.1 (report + a hostile document) and a portal page on localhost, another origin."""
    from aiqa.build import build_index

    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(report_settings.corpus_dir, root / "corpus")
    shutil.copytree(report_settings.index_dir, root / "index")
    (root / "corpus" / "phishing-notice.txt").write_text(XSS_DOC, encoding="utf-8")
    api_port, portal_port = free_port(), free_port()
    portal_origin = f"http://localhost:{portal_port}"
    settings = replace(
        report_settings,
        corpus_dir=root / "corpus",
        index_dir=root / "index",
        allowed_origins=(portal_origin,),
        api_token=TOKEN,
        admin_token=ADMIN,
        rate_limit="",  # every test's page loads come from one address within a minute
    )
    build_index(settings, embedder_factory=lambda: embedder)
    engine = engine_over(settings, embedder).load()

    api = f"http://127.0.0.1:{api_port}"
    pages = root / "portal"
    pages.mkdir()
    portal = (REPO / "examples" / "portal.html").read_text(encoding="utf-8")
    portal = portal.replace("http://127.0.0.1:7860", api).replace(" async>", f' data-token="{TOKEN}" async>')
    (pages / "portal.html").write_text(portal, encoding="utf-8")
    frame = f'<!doctype html><iframe src="{api}/widget?token={TOKEN}" width="420" height="600"></iframe>'
    (pages / "frame.html").write_text(frame, encoding="utf-8")
    handler = functools.partial(_Quiet, directory=str(pages))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", portal_port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with ThreadedServer(settings, engine, api_port):
            yield SimpleNamespace(url=api, portal=portal_origin, other=f"http://127.0.0.1:{portal_port}", root=root)
    finally:
        httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # the 2-core box is slow while another test suite runs beside

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site):
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
    context.request.post(f"{site.url}/login", form={"username": "tester", "password": TOKEN})  # the chat's login
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def chat_ask(page, question: str):
    """Ask in the Gradio chat; return the locator of the new reply."""
    count = page.locator(".aiqa-reply").count()
    page.fill("#aiqa-input textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function("n => document.querySelectorAll('.aiqa-reply').length > n", arg=count)
    return page.locator(".aiqa-reply").nth(count)


def widget_ask(page, question: str):
    """Ask in the widget; return the locator of the new bot message once it is answered."""
    count = page.locator(f"{WIDGET} .msg.bot").count()
    page.locator(f"{WIDGET} textarea").fill(question)
    page.keyboard.press("Enter")
    reply = page.locator(f"{WIDGET} .msg.bot").nth(count)
    page.wait_for_function(
        "([sel, n]) => { const m = document.querySelector(sel).shadowRoot.querySelectorAll('.msg.bot')[n];"
        " return m && !m.classList.contains('pending') && !m.classList.contains('streaming'); }",
        arg=[WIDGET, count],
    )
    return reply


# Each time the widget's shadow DOM changes while an answer is being written, whether the quoted
# answer's sources were on screen beside the draft.
DRAFT_WATCH = """sel => {
  const root = document.querySelector(sel).shadowRoot;
  window.__drafts = [];
  new MutationObserver(() => {
    const draft = root.querySelector('.msg.bot .draft');
    if (draft) window.__drafts.push(!!draft.closest('.msg').querySelector('.sources li'));
  }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def llm_site(request, report_settings, embedder):
    """The app over the report's index with a real LLM server writing the answers (AIQA_LLM_URL)."""
    try:
        llm = request.getfixturevalue("llm_server")
    except pytest.FixtureLookupError:
        pytest.skip("no llm_server fixture in tests/conftest.py: the LLM test server is not set up here")
    # Three passages and 160 tokens, as test_generate_llm.py's writer: what streams into the widget is
    # under test, not how much the small model writes (a few tokens a second on 2 cores).
    settings = replace(
        report_settings, llm_url=llm.url, api_token=TOKEN, rate_limit="", llm_passages=3, llm_max_tokens=160
    )
    engine = engine_over(settings, embedder).load()
    with ThreadedServer(settings, engine) as server:
        yield server


@pytest.mark.llm
def test_widget_streams_a_written_answer(browser, llm_site):
    """The widget asks with `stream: true`; the bubble ends on the checked answer (written or quoted)
    with its sources inside the widget, and whatever the model wrote never became markup."""
    from playwright.sync_api import expect

    context = browser.new_context(locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(180_000)  # the small model writes a few tokens a second on 2 cores
    page.goto(f"{llm_site.url}/widget?token={TOKEN}")
    page.wait_for_selector(f"{WIDGET} textarea")
    page.evaluate(DRAFT_WATCH, WIDGET)
    with page.expect_response(f"{llm_site.url}/api/ask") as asked:
        reply = widget_ask(page, "미국의 AI 반도체는?")
    response = asked.value
    assert response.headers["content-type"].startswith("text/event-stream")
    body = response.text()
    assert body.startswith("event: extractive\n") and "event: answer\n" in body
    drafts = page.evaluate("window.__drafts")
    if "event: token\n" in body:  # the model wrote: its text showed while it came, over the quoted sources
        assert drafts and all(drafts)
    expect(reply).not_to_contain_text("답변 작성 중")
    badge, answer = reply.locator(".badge"), reply.locator(".answer")
    expect(answer).not_to_be_empty()
    if badge.count():
        expect(badge).to_have_text("문서 근거로 작성한 답변")
    else:
        expect(answer).to_contain_text("NVIDIA")  # the quoted answer, after a fallback
    assert reply.locator(".draft").count() == 0  # the unchecked text is gone
    sources = reply.locator(".sources details")
    assert sources.count() >= 1
    first = sources.first
    expect(first.locator("summary")).to_contain_text("us-china-ai-race.txt")
    first.locator("summary").click()
    expect(first.locator("mark")).to_be_visible()
    markup = "sel => document.querySelector(sel).shadowRoot.querySelectorAll('.msg a, .msg img, .msg script').length"
    assert page.evaluate(markup, WIDGET) == 0
    context.close()


def test_chat_answers_with_sources_follows_up_and_abstains(page, site):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 1480})  # room for all three turns in docs/chat.png
    page.goto(f"{site.url}/")
    reply = chat_ask(page, "미국의 AI 반도체는?")
    expect(reply).to_contain_text("NVIDIA")
    expect(reply.locator(".aiqa-ref").first).to_have_text("[1]")
    source = reply.locator(".aiqa-sources .aiqa-source").first
    expect(source).to_contain_text("us-china-ai-race.txt")
    source.locator("summary").click()
    mark = source.locator("mark")
    expect(mark).to_be_visible()
    assert " ".join(mark.inner_text().split()) in " ".join(REPORT.read_text(encoding="utf-8").split())

    expect(chat_ask(page, "중국은?")).to_contain_text("Huawei")

    off = chat_ask(page, "회사 점심 메뉴는 뭐예요?")
    expect(off.locator(".aiqa-abstain")).to_contain_text("문서에서 답을 찾을 수 없습니다")
    expect(off.locator(".aiqa-related .aiqa-label")).to_have_text("관련 문단")
    assert off.locator(".aiqa-sources").count() == 0
    colour = off.locator(".aiqa-abstain").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    if SHOTS:
        page.screenshot(path=str(REPO / "docs" / "chat.png"))


def test_chat_follows_the_browser_language_and_the_toggle(browser, site):
    from playwright.sync_api import expect

    placeholder = "p => (document.querySelector('#aiqa-input textarea') || {placeholder: ''}).placeholder.startsWith(p)"
    context = browser.new_context(locale="en-US")
    context.request.post(f"{site.url}/login", form={"username": "tester", "password": TOKEN})
    page = context.new_page()
    page.goto(f"{site.url}/")
    page.wait_for_function(placeholder, arg="Ask")
    expect(page.get_by_role("tab", name="Documents")).to_have_count(1)
    page.get_by_label("한국어").check()
    page.wait_for_function(placeholder, arg="문서")
    expect(page.get_by_role("tab", name="문서 관리")).to_have_count(1)
    context.close()


def test_widget_on_a_portal_of_another_origin(page, site):
    from playwright.sync_api import expect

    page.goto(f"{site.portal}/portal.html")
    page.locator(f"{WIDGET} .launcher").click()
    reply = widget_ask(page, "미국의 AI 반도체는?")
    expect(reply).to_contain_text("NVIDIA")
    expect(reply.locator(".ref").first).to_have_text("[1]")
    counts = page.evaluate(
        "sel => [document.querySelector(sel).shadowRoot.querySelectorAll('.sources li').length,"
        " document.querySelectorAll('.sources li').length]",
        WIDGET,
    )
    assert counts[0] >= 1 and counts[1] == 0  # the citations live inside the shadow root only
    first = reply.locator(".sources details").first
    expect(first.locator("summary")).to_contain_text("us-china-ai-race.txt")
    first.locator("summary").click()
    expect(first.locator("mark")).to_be_visible()
    expect(widget_ask(page, "중국은?")).to_contain_text("Huawei")
    off = widget_ask(page, "회사 점심 메뉴는 뭐예요?")
    expect(off.locator(".abstain")).to_contain_text("문서에서 답을 찾을 수 없습니다")
    expect(off.locator(".related .label")).to_have_text("관련 문단")
    if SHOTS:
        page.wait_for_timeout(800)  # let the widget's smooth scroll finish, then show the first answer
        page.evaluate("sel => { document.querySelector(sel).shadowRoot.querySelector('.log').scrollTop = 0; }", WIDGET)
        page.screenshot(path=str(REPO / "docs" / "widget.png"))


def test_widget_on_an_origin_not_allowed_gets_no_answer(page, site):
    page.goto(f"{site.other}/portal.html")
    page.locator(f"{WIDGET} .launcher").click()
    reply = widget_ask(page, "미국의 AI 반도체는?")
    assert "error" in reply.get_attribute("class") and "NVIDIA" not in reply.inner_text()


def test_iframe_page_works_only_where_framing_is_allowed(page, site):
    from playwright.sync_api import expect

    page.goto(f"{site.portal}/frame.html")
    frame = page.frame_locator("iframe")
    frame.locator(f"{WIDGET} textarea").fill("미국의 AI 반도체는?")
    frame.locator(f"{WIDGET} textarea").press("Enter")
    expect(frame.locator(f"{WIDGET} .sources")).to_contain_text("us-china-ai-race.txt")
    page.goto(f"{site.other}/frame.html")
    page.wait_for_timeout(500)
    child = page.frames[1]
    assert child.url.startswith("chrome-error://") or child.locator(WIDGET).count() == 0


def _expanded_text(reply) -> str:
    for summary in reply.locator("summary").all():
        summary.click()
    return reply.inner_text()


PHISHING = ("피싱 메일 본문에는 무엇이 숨어 있나요?", "피싱 메일에 포함된 스크립트 코드는?")


def test_document_markup_shows_as_text_in_chat_and_widget(page, site):
    from playwright.sync_api import expect

    page.goto(f"{site.url}/")
    first = chat_ask(page, PHISHING[0])
    expect(first.locator(".aiqa-answer")).to_contain_text(IMG)
    shown = _expanded_text(first) + _expanded_text(chat_ask(page, PHISHING[1]))
    assert IMG in shown and SCRIPT in shown
    assert page.locator(".aiqa-reply img, .aiqa-reply script").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"

    page.goto(f"{site.portal}/portal.html")
    page.locator(f"{WIDGET} .launcher").click()
    first = widget_ask(page, PHISHING[0])
    expect(first.locator(".answer")).to_contain_text(IMG)
    shown = _expanded_text(first) + _expanded_text(widget_ask(page, PHISHING[1]))
    assert IMG in shown and SCRIPT in shown
    tags = page.evaluate(
        "sel => document.querySelector(sel).shadowRoot.querySelectorAll('.msg img, .msg script').length",
        WIDGET,
    )
    assert tags == 0 and page.evaluate("typeof window.__xss") == "undefined"


def test_docs_page_lists_the_api(page, site):
    from playwright.sync_api import expect

    page.goto(f"{site.url}/docs")
    expect(page.locator("section h2").first).to_be_visible()
    expect(page.locator("#api")).to_contain_text("/api/ask")
    expect(page.locator("#api")).to_contain_text("question")


def listed(name: str) -> re.Pattern[str]:
    """A file name however the page lays its text out (Gradio's file list shows "remote-work .md")."""
    return re.compile(r"\s*".join(map(re.escape, name)))


def test_admin_tab_uploads_and_rebuilds_with_the_token(page, site, tmp_path):
    from playwright.sync_api import expect

    doc = tmp_path / "remote-work.md"
    doc.write_text(
        "# 재택근무 규정\n\n재택근무는 주 2회까지 허용되며, 팀장의 사전 승인이 필요합니다.\n",
        encoding="utf-8",
    )
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ")
    page.goto(f"{site.url}/")
    page.get_by_role("tab", name="문서 관리").click()
    token = page.get_by_label("관리 토큰 (AIQA_ADMIN_TOKEN)")
    run = page.get_by_role("button", name="올리고 색인 갱신")
    token.fill("wrong")
    run.click()
    expect(page.locator(".aiqa-error")).to_contain_text("관리 토큰이 맞지 않습니다")

    token.fill(ADMIN)
    # Gradio's upload route takes files only with the admin token: the tab hands it to that route alone.
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "aiqa-admin"]
    assert cookie["path"] == "/gradio_api/upload" and cookie["sameSite"] == "Strict"
    files = page.locator("#aiqa-files input[type=file]")
    files.set_input_files(str(bad))
    expect(page.locator("#aiqa-files")).to_contain_text(listed("tool.exe"))
    run.click()
    expect(page.locator(".aiqa-error")).to_contain_text("unsupported file type")
    page.locator("#aiqa-files button[aria-label*='Clear'], #aiqa-files button[aria-label*='지우기']").first.click()
    files.set_input_files(str(doc))
    expect(page.locator("#aiqa-files")).to_contain_text(listed("remote-work.md"))
    run.click()
    report = page.locator(".aiqa-report")
    expect(report).to_contain_text("remote-work.md")
    expect(report.locator(".aiqa-counts div", has_text="추가")).to_contain_text("1")
    assert (site.root / "corpus" / "remote-work.md").exists() and not (site.root / "corpus" / "tool.exe").exists()

    page.get_by_role("tab", name="질문하기").click()
    reply = chat_ask(page, "재택근무에 필요한 승인은?")
    expect(reply.locator(".aiqa-sources")).to_contain_text("remote-work.md")


def test_chat_answers_a_question_of_rare_hangul_syllables_without_an_error(page, site):
    page.goto(f"{site.url}/")
    reply = chat_ask(page, "괋뷇 휴가는?")  # 괋 and 뷇 are missing from the romaniser's tables
    assert reply.inner_text().strip()
    body = page.locator("body").inner_text()
    assert "KeyError" not in body and "Traceback" not in body
    assert "aiqa-error" not in (reply.get_attribute("class") or "")  # an answer or a refusal, not a failure


def _ratings_of(site, question: str, seconds: float = 15.0) -> list:
    """The ratings the server kept for the answers to `question`, once there are some (or [] after `seconds`)."""
    import time

    from aiqa.feedback import SqliteFeedback

    deadline = time.monotonic() + seconds
    while True:
        store = SqliteFeedback(site.root / "index" / "feedback.sqlite3")
        found = [r for a in store.answers() if a.question == question for r in a.ratings]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_chat_replies_take_a_thumbs_down(browser, site):
    from playwright.sync_api import expect

    context = browser.new_context(locale="en-US")
    context.request.post(f"{site.url}/login", form={"username": "tester", "password": TOKEN})
    page = context.new_page()
    page.goto(f"{site.url}/")
    question = "알리바바가 내놓은 AI 모델은?"
    expect(chat_ask(page, question)).to_contain_text("Qwen")
    page.get_by_role("button", name="Dislike").last.click()
    assert _ratings_of(site, question) == [(-1, "")]
    context.close()


def test_widget_answers_take_a_thumbs_down_with_a_comment(page, site):
    from playwright.sync_api import expect

    page.goto(f"{site.portal}/portal.html")
    page.locator(f"{WIDGET} .launcher").click()
    question = "엔비디아 없이 중국이 시도하는 대체 칩은?"
    reply = widget_ask(page, question)
    reply.locator(".rate .down").click()
    reply.locator(".rate input").fill("910C도 있어요")
    reply.locator(".rate .send-rating").click()
    expect(reply.locator(".rate .done")).to_have_text("의견 감사합니다")
    assert _ratings_of(site, question) == [(-1, "910C도 있어요")]
