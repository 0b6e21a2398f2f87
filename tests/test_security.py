"""Hardening of the real server over HTTP: sign-in on every chat route, split tokens, hosts, limits, odd questions."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import replace

import httpx
import pytest
from starlette.routing import Mount

from tests.test_server import ThreadedServer

READ = "read-t0ken"
ADMIN = "admin-t0ken"
Q = {"question": "미국의 AI 반도체는?"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def guarded(report_settings, engine, tmp_path_factory):
    """The app with a read token, an admin token and a corpus of its own, in a thread."""
    import shutil

    root = tmp_path_factory.mktemp("guarded")
    shutil.copytree(report_settings.corpus_dir, root / "corpus")
    shutil.copytree(report_settings.index_dir, root / "index")
    settings = replace(
        report_settings,
        corpus_dir=root / "corpus",
        index_dir=root / "index",
        api_token=READ,
        admin_token=ADMIN,
        rate_limit="1000/minute",
    )
    with ThreadedServer(settings, engine) as server:
        server.root = root
        yield server


def gradio_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) the mounted Gradio app really routes, from its router."""
    mount = next(r for r in app.routes if isinstance(r, Mount))
    out: list[tuple[str, str]] = []

    def walk(routes) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            elif hasattr(route, "path"):
                for method in getattr(route, "methods", None) or {"WEBSOCKET"}:
                    out.append((method, route.path))

    walk(mount.app.routes)
    return sorted(set(out))


def concrete(path: str) -> str:
    """A path template with every parameter filled: /gradio_api/call/{api_name} -> /gradio_api/call/x."""
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_gradio_route_but_the_page_shell_needs_sign_in(guarded):
    from aiqa.web.guard import BLOCKED_PREFIXES, OWN_PREFIXES, PUBLIC_EXACT, PUBLIC_PREFIXES

    app = guarded.server.config.app
    routes = gradio_routes(app)
    paths = {p for _, p in routes}
    # The enumeration sees the routes that answer questions or take files.
    assert {
        "/gradio_api/queue/join",
        "/gradio_api/call/{api_name}",
        "/gradio_api/call/v2/{api_name}",
        "/gradio_api/run/{api_name}",
        "/gradio_api/upload",
        "/gradio_api/file={path_or_url:path}",
        "/gradio_api/queue/data",
    } <= paths
    public = []
    for method, path in routes:
        url = guarded.url + concrete(path)
        if method == "WEBSOCKET":
            pytest.fail(f"websocket route {path}: add a test that it closes without sign-in")
        if path.startswith(OWN_PREFIXES):
            continue  # shadowed by the API's own route of that name (its schema, /docs)
        r = httpx.request(method, url, timeout=30, json={} if method == "POST" else None)
        if path.startswith(BLOCKED_PREFIXES):
            assert r.status_code == 404, (method, path)
        elif (path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES) or path.rstrip("/") == "/login") and (
            method in ("GET", "HEAD") or path.rstrip("/") == "/login"
        ):
            public.append(path)
        else:
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
    # Public: the page shell (which shows the login form), static assets and the login itself.
    assert all(p in PUBLIC_EXACT or p.startswith(PUBLIC_PREFIXES) or p.rstrip("/") == "/login" for p in public)


def test_the_chat_asks_for_a_login_and_the_read_token_opens_it(guarded):
    from gradio_client import Client

    assert httpx.get(f"{guarded.url}/").status_code == 200  # the page shell, which shows the login form
    for path in ("/config", "/gradio_api/info", "/gradio_api/openapi.json"):
        assert httpx.get(f"{guarded.url}{path}").status_code == 401, path
    with httpx.Client(base_url=guarded.url, timeout=60) as http:
        assert http.post("/login", data={"username": "kim", "password": "wrong"}).status_code == 400
        assert http.post("/login", data={"username": "kim", "password": READ}).status_code == 200
        assert http.get("/gradio_api/info").status_code == 200
    reply = Client(guarded.url, auth=("kim", READ), verbose=False).predict("미국의 AI 반도체는?", api_name="/ask")
    assert "NVIDIA" in reply


def test_the_read_token_never_opens_admin_routes(guarded):
    for path in ("/api/index", "/api/documents"):
        r = httpx.post(f"{guarded.url}{path}", headers=bearer(READ))
        assert r.status_code == 401 and "AIQA_ADMIN_TOKEN" in r.json()["error"], path
    assert httpx.post(f"{guarded.url}/api/ask", json=Q, headers=bearer(READ), timeout=60).status_code == 200
    assert httpx.post(f"{guarded.url}/api/ask", json=Q, headers=bearer(ADMIN), timeout=60).status_code == 200
    r = httpx.post(f"{guarded.url}/api/index", headers=bearer(ADMIN), timeout=120)
    assert r.status_code == 200 and r.json()["unchanged"] >= 1


def _queue_call(http: httpx.Client, fn_index: int, data: list) -> list:
    """Run one event through Gradio's queue over HTTP, as the page does; return its output data."""
    session = "sec-test"
    body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session})  # escapes lone surrogates
    joined = http.post("/gradio_api/queue/join", content=body, headers={"Content-Type": "application/json"})
    assert joined.status_code == 200, joined.text
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if event.get("msg") == "process_completed":
                    return event["output"]
    raise AssertionError("no process_completed event")


def test_the_admin_tab_takes_no_file_that_was_not_uploaded(guarded):
    before = sorted(p.name for p in (guarded.root / "corpus").iterdir())
    with httpx.Client(base_url=guarded.url, timeout=120) as http:
        http.post("/login", data={"username": "kim", "password": READ})
        config = http.get("/config").json()
        files_id = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "aiqa-files")
        fn_index = next(i for i, d in enumerate(config["dependencies"]) if files_id in d["inputs"])
        stolen = {"path": "/etc/passwd", "orig_name": "passwd.txt", "meta": {"_type": "gradio.FileData"}}
        out = _queue_call(http, fn_index, [ADMIN, [stolen], "ko"])
    assert "not uploaded" in json.dumps(out, ensure_ascii=False)
    assert sorted(p.name for p in (guarded.root / "corpus").iterdir()) == before
    assert "root:" not in json.dumps(out)


def test_uploaded_files_must_come_from_gradios_upload_folder(tmp_path, monkeypatch):
    from aiqa.web.uploads import UploadRejected, uploaded_files

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    received = tmp_path / "gradio" / "abc123" / "memo.md"
    received.parent.mkdir(parents=True)
    received.write_text("# memo", encoding="utf-8")
    assert uploaded_files([str(received)]) == [received]
    link = tmp_path / "gradio" / "abc123" / "link.md"
    link.symlink_to("/etc/passwd")
    for path in ("/etc/passwd", str(link), str(tmp_path / "gradio" / ".." / "outside.md")):
        with pytest.raises(UploadRejected, match="not uploaded through this page"):
            uploaded_files([path])


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7860", "192.168.1.20"])
def test_requests_for_another_host_are_refused(guarded, host):
    for path in ("/", "/api/health", "/gradio_api/info"):
        r = httpx.get(f"{guarded.url}{path}", headers={"Host": host})
        assert r.status_code == 421 and "AIQA_ALLOWED_HOSTS" in r.json()["error"], path
    assert httpx.get(f"{guarded.url}/api/health", headers={"Host": "localhost"}).status_code == 200


def test_allowed_hosts_defaults_and_setting():
    from aiqa.config import Settings
    from aiqa.web.access import allowed_hosts

    base = Settings(allowed_origins=("https://portal.example.com",))
    assert allowed_hosts(base, "0.0.0.0") == {"localhost", "127.0.0.1", "::1", "portal.example.com"}
    assert "10.1.2.3" in allowed_hosts(base, "10.1.2.3")
    assert allowed_hosts(replace(base, allowed_hosts=("qa.intra",)), "0.0.0.0") == {"qa.intra"}
    assert allowed_hosts(replace(base, allowed_hosts=("*",)), "0.0.0.0") is None


def test_monitoring_is_not_served(guarded, open_site):
    for url in (guarded.url, open_site):
        for path in ("/monitoring", "/monitoring/summary"):
            assert httpx.get(f"{url}{path}").status_code == 404


@pytest.fixture(scope="module")
def open_site(report_settings, engine):
    with ThreadedServer(report_settings, engine) as server:
        yield server.url


def test_history_over_the_caps_gets_a_400_that_names_the_cap(guarded):
    many = {**Q, "history": ["미국의 AI 반도체는?"] * 21}
    r = httpx.post(f"{guarded.url}/api/ask", json=many, headers=bearer(READ))
    assert r.status_code == 400 and "20" in r.json()["error"] and "AIQA_MAX_HISTORY" in r.json()["error"]
    long = {**Q, "history": ["가" * 900] * 10}
    r = httpx.post(f"{guarded.url}/api/ask", json=long, headers=bearer(READ))
    assert r.status_code == 400 and "8000" in r.json()["error"] and "AIQA_MAX_HISTORY_CHARS" in r.json()["error"]
    huge = {**Q, "history": ["가" * 400_000]}
    assert httpx.post(f"{guarded.url}/api/ask", json=huge, headers=bearer(READ)).status_code == 413


@pytest.mark.parametrize(
    "question", ["???", "...", "🙂", "\x00\x00", "미국 \x00 반도체", "미국 \udfff 반도체"], ids=repr
)
def test_questions_without_content_or_with_bad_characters_are_refused(guarded, question):
    raw = json.dumps({"question": question}).encode()  # \\udfff travels as an escape, as a hostile client sends it
    headers = {**bearer(READ), "Content-Type": "application/json"}
    r = httpx.post(f"{guarded.url}/api/ask", content=raw, headers=headers, timeout=60)
    assert r.status_code == 400, r.text
    assert re.search(r"no words|surrogate|control character", r.json()["error"])


def test_the_chat_shows_a_notice_for_a_lone_surrogate(guarded):
    with httpx.Client(base_url=guarded.url, timeout=120) as http:
        http.post("/login", data={"username": "kim", "password": READ})
        config = http.get("/config").json()
        fn_index = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "ask")
        out = json.dumps(_queue_call(http, fn_index, ["미국 \udfff 반도체", [], "ko"]), ensure_ascii=False)
    assert "aiqa-error" in out and "surrogate" in out and "TypeError" not in out


def test_rate_limit_answers_429_with_retry_after_per_client(report_settings, engine):
    settings = replace(report_settings, api_token=READ, rate_limit="3/minute")
    with ThreadedServer(settings, engine) as server:
        codes = [
            httpx.post(f"{server.url}/api/ask", json=Q, headers=bearer(READ), timeout=60).status_code for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        r = httpx.post(f"{server.url}/api/ask", json=Q, headers=bearer(READ))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "AIQA_RATE_LIMIT" in r.json()["error"]
        queue = httpx.post(f"{server.url}/gradio_api/queue/join", json={}, headers=bearer(READ))
        assert queue.status_code == 429
        # Another client behind the trusted proxy (loopback by default) has its own window.
        other = {**bearer(READ), "X-Forwarded-For": "10.0.0.7"}
        assert httpx.post(f"{server.url}/api/ask", json=Q, headers=other, timeout=60).status_code == 200


def test_repeated_wrong_tokens_are_slowed_down(report_settings, engine):
    settings = replace(report_settings, api_token=READ, admin_token=ADMIN, bad_token_limit="3/minute")
    with ThreadedServer(settings, engine) as server:
        codes = [httpx.post(f"{server.url}/api/index", headers=bearer(f"guess{i}")).status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]
        r = httpx.post(f"{server.url}/api/ask", json=Q, headers=bearer(READ))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        login = httpx.post(f"{server.url}/login", data={"username": "x", "password": READ})
        assert login.status_code == 429
        other = {**bearer(READ), "X-Forwarded-For": "10.0.0.8"}
        assert httpx.post(f"{server.url}/api/ask", json=Q, headers=other, timeout=60).status_code == 200


def test_the_trusted_proxy_header_opens_the_chat_only_from_the_proxy(report_settings, engine):
    from gradio_client import Client

    user = {"X-Forwarded-User": "kim@example.com"}
    settings = replace(report_settings, api_token=READ, trusted_user_header="X-Forwarded-User")
    with ThreadedServer(settings, engine) as server:
        assert httpx.get(f"{server.url}/gradio_api/info", headers=user).status_code == 200
        assert httpx.get(f"{server.url}/gradio_api/info").status_code == 401
        assert httpx.get(f"{server.url}/", headers=user).status_code == 200
        reply = Client(server.url, headers=user, verbose=False).predict("미국의 AI 반도체는?", api_name="/ask")
        assert "NVIDIA" in reply
    untrusted = replace(settings, trusted_proxies=("10.9.9.9",))
    with ThreadedServer(untrusted, engine) as server:
        assert httpx.get(f"{server.url}/gradio_api/info", headers=user).status_code == 401


def test_the_chat_queue_and_the_api_wait_are_bounded(engine):
    from aiqa.web.ui import create_ui

    demo = create_ui(engine)
    assert demo._queue.max_size == engine.settings.queue_size


def test_duplicate_upload_names_are_refused(guarded):
    nfc = "한글.md"
    nfd = unicodedata.normalize("NFD", nfc)
    for pair in ((nfc, nfc), (nfc, nfd)):
        files = [("files", (pair[0], b"# one")), ("files", (pair[1], b"# two"))]
        r = httpx.post(f"{guarded.url}/api/documents", files=files, headers=bearer(ADMIN), timeout=60)
        assert r.status_code == 400 and "rename" in r.json()["error"], r.text
    assert not list((guarded.root / "corpus").glob("*.md"))


def test_the_api_answers_busy_when_its_waiting_line_is_full(report_settings):
    import anyio
    from starlette.exceptions import HTTPException

    from aiqa.web.limits import Limits
    from aiqa.web.tokens import ApiAccess

    assert anyio.run(ApiAccess(report_settings, Limits(queue_size=1)).run, lambda: 42) == 42
    with pytest.raises(HTTPException) as refused:
        anyio.run(ApiAccess(report_settings, Limits(queue_size=0)).run, lambda: 42)
    assert refused.value.status_code == 503 and refused.value.headers["Retry-After"]


def test_a_bad_rate_setting_is_one_line_that_names_it():
    from aiqa.config import Settings
    from aiqa.errors import AiqaError
    from aiqa.web.guard import Throttle

    with pytest.raises(AiqaError, match="AIQA_RATE_LIMIT='lots' is not a rate"):
        Throttle(Settings(rate_limit="lots"))
    assert Throttle(Settings(rate_limit="", bad_token_limit="")).hit("10.0.0.1") == 0


def test_the_chat_sends_only_the_latest_questions_that_fit_the_caps():
    from aiqa.web.ui import recent_questions

    history = []
    for i in range(30):
        history += [{"role": "user", "content": f"질문 {i}"}, {"role": "assistant", "content": "<div>답</div>" * 50}]
    assert recent_questions(history, 20, 8000) == [f"질문 {i}" for i in range(10, 30)]
    assert recent_questions(history, 20, 12) == ["질문 28", "질문 29"]


def test_a_rate_limit_set_empty_is_off_and_unset_is_the_default(monkeypatch):
    from aiqa.config import Settings

    monkeypatch.setenv("AIQA_RATE_LIMIT", "")
    monkeypatch.setenv("AIQA_BAD_TOKEN_LIMIT", "")
    assert Settings().rate_limit == "" and Settings().bad_token_limit == ""
    monkeypatch.delenv("AIQA_RATE_LIMIT")
    monkeypatch.delenv("AIQA_BAD_TOKEN_LIMIT")
    assert Settings().rate_limit == "60/minute" and Settings().bad_token_limit == "10/minute"
