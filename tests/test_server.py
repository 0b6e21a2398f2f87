"""The real server over HTTP: the ask contract, refusals, token, origins, uploads, gradio_client."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import httpx
import pytest

from aiqa.errors import BadRequest
from tests.conftest import ADMIN, PORTAL, REPORT, TOKEN, Background, free_port

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


def wait_until_up(url: str, seconds: float = 180, process: Background | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.proc.poll() is not None:
            raise RuntimeError(f"server exited with {process.proc.returncode}: {process.stderr()}")
        try:
            if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not come up in {seconds} s")


class ThreadedServer:
    """create_app served by uvicorn in a thread (shares the test's loaded engine)."""

    def __init__(self, settings, engine, port: int | None = None, limits: dict | None = None):
        import uvicorn

        from aiqa.web.limits import Limits
        from aiqa.web.server import create_app

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        limits = Limits.from_settings(settings, **(limits or {}))
        app = create_app(settings, engine, limits=limits)
        # The connection rules of `aiqa serve` (proxy handling off, header deadline, connection cap).
        options = limits.uvicorn_options()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        wait_until_up(self.url, 60)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(2)
        if self.thread.is_alive():  # a stream still open (the chat's queue): stop without waiting for it
            self.server.force_exit = True
            self.thread.join(10)


@pytest.fixture(scope="module")
def site(served):
    """`aiqa serve` in its own process (started early, conftest.py), once it answers."""
    wait_until_up(served.url, process=served.process)
    return {"url": served.url, "root": served.root, "corpus": served.corpus}


@pytest.fixture(scope="module")
def checked_site(fake_settings, fake_engine):
    """create_app with a token and an allow-list over the fake model: for request checks, which need no model."""
    settings = replace(fake_settings, api_token=TOKEN, allowed_origins=(PORTAL,))
    with ThreadedServer(settings, fake_engine) as server:
        yield server.url


@pytest.fixture(scope="module")
def open_site(report_settings, engine):
    """create_app with no token and no allow-list, in a thread."""
    with ThreadedServer(report_settings, engine) as server:
        yield server.url


def ask(url: str, body, headers=None, **kw) -> httpx.Response:
    return httpx.post(f"{url}/api/ask", json=body, headers={**AUTH, **(headers or {})}, timeout=60, **kw)


def test_ask_returns_the_contract_with_quotes_from_the_report(site):
    r = ask(site["url"], {"question": "미국의 AI 반도체는?"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data) >= {
        "question",
        "answer",
        "abstained",
        "language",
        "resolved_question",
        "citations",
        "passages",
        "timings_ms",
    }
    assert not data["abstained"] and data["language"] == "ko" and "NVIDIA" in data["answer"]
    report = REPORT.read_text(encoding="utf-8")
    assert data["citations"]
    for c in data["citations"]:
        assert f"[{c['n']}]" in data["answer"] and c["quote"] in report and c["source"] == REPORT.name
    assert r.headers["x-content-type-options"] == "nosniff" and "referrer-policy" in r.headers


def test_health_docs_and_schema(site):
    health = httpx.get(f"{site['url']}/api/health").json()
    assert health["documents"] == 1 and health["chunks"] > 0 and health["index_version"]
    docs = httpx.get(f"{site['url']}/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    schema = httpx.get(f"{site['url']}/openapi.json").json()
    assert {"/api/ask", "/api/health", "/api/index", "/api/documents"} <= set(schema["paths"])


BAD_BODIES = {
    "empty question": {"question": ""},
    "blank question": {"question": "   "},
    "5000 characters": {"question": "가" * 5000},
    "question=123": {"question": 123},
    "no question": {"k": 5},
    "k=0": {"question": "미국의 AI 반도체는?", "k": 0},
    "k=1000": {"question": "미국의 AI 반도체는?", "k": 1000},
    'k="x"': {"question": "미국의 AI 반도체는?", "k": "x"},
    "k=true": {"question": "미국의 AI 반도체는?", "k": True},
    'history="x"': {"question": "미국의 AI 반도체는?", "history": "x"},
    "history=[1]": {"question": "미국의 AI 반도체는?", "history": [1]},
    "body is a list": ["미국의 AI 반도체는?"],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_requests_get_a_4xx_json_error(checked_site, body):
    r = ask(checked_site, body)
    assert 400 <= r.status_code < 500, r.text
    assert isinstance(r.json()["error"], str) and r.json()["error"]


@pytest.mark.parametrize(
    "raw", [b'{"question": "broken', b"", b"\xff\xfe"], ids=["broken JSON", "no body", "not UTF-8"]
)
def test_unparsable_bodies_get_400(checked_site, raw):
    r = httpx.post(f"{checked_site}/api/ask", content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]


def test_wrong_method_and_unknown_route_are_json(checked_site):
    r = httpx.get(f"{checked_site}/api/ask")
    assert r.status_code == 405 and "POST" in r.json()["error"]
    r = httpx.get(f"{checked_site}/api/nope")
    assert r.status_code == 404 and "error" in r.json()


def test_token_is_required_when_set(site):
    q = {"question": "미국의 AI 반도체는?"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = httpx.post(f"{site['url']}/api/ask", json=q, headers=headers)
        assert r.status_code == 401 and "token" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.post(f"{site['url']}/api/index").status_code == 401
    assert httpx.post(f"{site['url']}/api/ask", json=q, headers=AUTH, timeout=60).status_code == 200


def test_only_allowed_origins_get_cors(site):
    q = {"question": "미국의 AI 반도체는?"}
    refused = ask(site["url"], q, {"Origin": "http://evil.example"})
    assert refused.status_code == 403 and "AIQA_ALLOWED_ORIGINS" in refused.json()["error"]
    assert "access-control-allow-origin" not in refused.headers
    for origin in ("null", "http://portal.test:8081", "http://localhost:9999"):
        assert ask(site["url"], q, {"Origin": origin}).status_code == 403
    allowed = ask(site["url"], q, {"Origin": PORTAL})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == PORTAL
    preflight = httpx.options(
        f"{site['url']}/api/ask",
        headers={
            "Origin": PORTAL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == PORTAL
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    same = ask(site["url"], q, {"Origin": site["url"]})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    proxied = ask(site["url"], q, {"Origin": "https://qa.intra.example", "X-Forwarded-Host": "qa.intra.example"})
    assert proxied.status_code == 200 and "access-control-allow-origin" not in proxied.headers


def test_the_chat_serves_no_file_of_its_own_folder(site):
    for path in ("/gradio_api/file=pyproject.toml", "/gradio_api/file=/etc/passwd", f"/gradio_api/file={REPORT}"):
        r = httpx.get(f"{site['url']}{path}")
        assert r.status_code in (401, 403, 404), path
        assert "root:" not in r.text and "NVIDIA" not in r.text


def test_pages_carry_frame_ancestors(site):
    for path in ("/widget", "/"):
        r = httpx.get(f"{site['url']}{path}")
        assert r.status_code == 200
        assert f"frame-ancestors 'self' {PORTAL}" in r.headers["content-security-policy"]
    js = httpx.get(f"{site['url']}/widget.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "attachShadow" in js.text


def test_gradio_client_calls_the_chat_with_history(site):
    from gradio_client import Client

    client = Client(site["url"], auth=("tester", TOKEN), verbose=False)
    first = client.predict("미국의 AI 반도체는?", api_name="/ask")
    assert "NVIDIA" in first and "aiqa-source" in first
    follow = client.predict("중국은?", api_name="/ask")
    assert "Huawei" in follow


def _upload(site, files, headers=ADMIN_AUTH) -> httpx.Response:
    return httpx.post(f"{site['url']}/api/documents", files=files, headers=headers, timeout=120)


def test_uploads_are_refused_when_unsafe(site):
    root, corpus = site["root"], site["corpus"]
    before = sorted(p.name for p in corpus.iterdir())
    r = _upload(site, [("files", ("tool.exe", b"MZ..."))])
    assert r.status_code == 415 and ".md" in r.json()["error"] and ".pdf" in r.json()["error"]
    for name in ("../evil.txt", "..\\evil.txt", ".hidden.md", "sub/evil.txt"):
        r = _upload(site, [("files", (name, b"evil"))])
        assert r.status_code == 400, (name, r.text)
    # httpx escapes control characters in file names; send them raw as a hostile client would.
    raw = (
        b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="evil\x07\x1b.md"\r\n'
        b"Content-Type: text/markdown\r\n\r\nevil\r\n--b0undary--\r\n"
    )
    r = httpx.post(
        f"{site['url']}/api/documents",
        content=raw,
        headers={**ADMIN_AUTH, "Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert r.status_code == 400 and "control characters" in r.json()["error"]
    r = _upload(site, [("files", ("big.txt", b"x" * 1_100_000))])
    assert r.status_code == 413 and "AIQA_MAX_FILE_MB" in r.json()["error"]
    # A bad file in a batch refuses the whole batch.
    r = _upload(site, [("files", ("fine.md", b"# ok")), ("files", ("bad.exe", b"MZ"))])
    assert r.status_code == 415
    assert _upload(site, [("files", ("x.md", b"x"))], headers={}).status_code == 401
    assert sorted(p.name for p in corpus.iterdir()) == before
    assert not list(root.rglob("evil*")) and not (root.parent / "evil.txt").exists()


def test_an_uploaded_document_becomes_answerable(site):
    text = "# 재택근무 규정\n\n재택근무는 주 2회까지 허용되며, 팀장의 사전 승인이 필요합니다.\n"
    r = _upload(site, [("files", ("remote-work.md", text.encode()))])
    assert r.status_code == 200, r.text
    assert r.json()["saved"] == ["remote-work.md"] and r.json()["report"]["added"] == 1
    assert (site["corpus"] / "remote-work.md").read_text(encoding="utf-8") == text
    again = httpx.post(f"{site['url']}/api/index", headers=ADMIN_AUTH, timeout=120)
    assert again.status_code == 200 and again.json()["unchanged"] == 2 and again.json()["added"] == 0
    data = ask(site["url"], {"question": "재택근무에 필요한 승인은?"}).json()
    assert not data["abstained"] and data["citations"][0]["source"] == "remote-work.md"
    assert "주 2회" in data["answer"]


def test_without_a_token_writes_are_off_and_localhost_pages_may_ask(open_site):
    for path in ("/api/index", "/api/documents"):
        r = httpx.post(f"{open_site}{path}")
        assert r.status_code == 403 and "AIQA_ADMIN_TOKEN" in r.json()["error"]
    q = {"question": "미국의 AI 반도체는?"}
    r = httpx.post(f"{open_site}/api/ask", json=q, headers={"Origin": "http://localhost:8080"}, timeout=60)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:8080"
    r = httpx.post(f"{open_site}/api/ask", json=q, headers={"Origin": "http://intranet.example"})
    assert r.status_code == 403
    assert httpx.get(f"{open_site}/").headers["content-security-policy"] == "frame-ancestors 'self'"


@pytest.mark.parametrize("name", ["보고서.md", "report v2.PDF", "a.b.docx", "notes.markdown"])
def test_plain_supported_names_pass(name):
    from aiqa.web.uploads import check_name

    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "..", "../a.md", "a/b.md", ".env.md", "a\nb.md", "x\u202etxt.exe.md", "a.exe"])
def test_unsafe_or_unsupported_names_are_refused(name):
    from aiqa.web.uploads import check_name

    with pytest.raises(BadRequest):
        check_name(name)


def test_rendered_replies_escape_document_text():
    from aiqa.web.render import render_result

    evil = '<img src=x onerror="alert(1)"> <script>alert(2)</script>'
    result = {
        "answer": f"**굵게** {evil} [1]",
        "abstained": False,
        "passages": [],
        "citations": [
            {
                "n": 1,
                "source": "<b>x</b>.md",
                "section": evil,
                "locator": "line 1",
                "quote": evil,
                "passage": f"앞 {evil} 뒤",
            }
        ],
    }
    html = render_result(result)
    assert "<img" not in html and "<script" not in html and "&lt;script&gt;" in html
    assert "<strong>굵게</strong>" in html and "<mark>&lt;img" in html and "\n" not in html
