"""The second hardening pass (issue 23), against the real server over HTTP: bodies, health, proxies, uploads.

Request checks run over the fake model (they need no answers); what needs an answer written by an
LLM server runs over the real model and tests/fake_llm.py, which writes what a test tells it to.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import replace

import httpx
import pytest

from tests.conftest import engine_over
from tests.fake_llm import FakeLlm
from tests.test_server import ThreadedServer

# Real servers over sockets, slow clients and header deadlines waited out: the slow tier (tests/README.md).
pytestmark = pytest.mark.model

READ = "read-t0ken"
ADMIN = "admin-t0ken"
Q = {"question": "미국의 AI 반도체는?"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def fake_site(fake_settings, fake_engine, limits: dict | None = None, **changes):
    settings = replace(fake_settings, api_token=READ, admin_token=ADMIN, rate_limit="1000/minute", **changes)
    with ThreadedServer(settings, fake_engine, limits=limits) as server:
        yield server


@pytest.fixture(scope="module")
def checked(fake_settings, fake_engine):
    with fake_site(fake_settings, fake_engine, max_file_mb=1) as server:
        yield server


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def send_chunked(server, path: str, headers: dict[str, str], pieces, wait: float = 10) -> bytes:
    """POST a chunked body that never ends (no last chunk); return the start of what the server answers."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(head.encode())
        with contextlib.suppress(OSError):  # the server may answer and close while the body still goes
            for piece in pieces:
                s.sendall(chunk(piece))
        s.settimeout(wait)
        return read_answer(s)


def read_answer(s: socket.socket) -> bytes:
    """The status line, headers and (Content-Length) body of one answer."""
    data = b""
    while b"\r\n\r\n" not in data and (piece := s.recv(4096)):
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(v) for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n")) if k.lower() == b"content-length"), 0
    )
    while len(body) < length and (piece := s.recv(4096)):
        body += piece
    return head + b"\r\n\r\n" + body


# 1. Bodies are refused before they are read, and cut off at the route's cap, chunked too.


def test_a_body_without_the_token_is_refused_before_it_is_read(checked):
    started = time.monotonic()
    answer = send_chunked(checked, "/api/ask", {"Content-Type": "application/json"}, [b'{"question": "' + b"x" * 1000])
    assert answer.startswith(b"HTTP/1.1 401") and b"AIQA_API_TOKEN" in answer
    assert time.monotonic() - started < 5
    answer = send_chunked(checked, "/api/documents", bearer(READ), [b"-" * 1000])
    assert answer.startswith(b"HTTP/1.1 401") and b"AIQA_ADMIN_TOKEN" in answer


def test_a_chunked_body_over_the_cap_is_cut_off_while_it_arrives(checked):
    ask = send_chunked(checked, "/api/ask", bearer(READ), [b"x" * 16_000] * 20)  # 320 KB of a 256 KB cap
    assert ask.startswith(b"HTTP/1.1 413") and b"256 KB" in ask
    headers = {**bearer(ADMIN), "Content-Type": "multipart/form-data; boundary=b"}
    part = b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.md"\r\n\r\n'
    upload = send_chunked(checked, "/api/documents", headers, [part] + [b"x" * 1_000_000] * 23)  # 23 MB of 21 MB
    assert upload.startswith(b"HTTP/1.1 413") and b"21 MB" in upload
    # A declared length over the cap is refused before a byte is read.
    r = httpx.post(f"{checked.url}/api/ask", content=b"x" * 300_000, headers=bearer(READ))
    assert r.status_code == 413 and "shorter" in r.json()["error"]
    assert httpx.post(f"{checked.url}/api/ask", json=Q, headers=bearer(READ), timeout=60).status_code == 200


# 3. One trust decision, on the connecting address, from AIQA_TRUSTED_PROXIES.

USER = "X-Forwarded-User"


def test_a_proxy_on_loopback_that_appends_x_forwarded_for_signs_users_in(fake_settings, fake_engine):
    with fake_site(fake_settings, fake_engine, trusted_user_header=USER) as server:
        proxied = {USER: "kim@example.com", "X-Forwarded-For": "10.0.0.5"}
        assert httpx.get(f"{server.url}/gradio_api/info", headers=proxied).status_code == 200
        assert httpx.get(f"{server.url}/gradio_api/info", headers={"X-Forwarded-For": "10.0.0.5"}).status_code == 401
        twice = [(USER, "boss@example.com"), (USER, "kim@example.com"), ("X-Forwarded-For", "10.0.0.5")]
        r = httpx.get(f"{server.url}/gradio_api/info", headers=twice)
        assert r.status_code == 401 and "twice" in r.json()["error"]


def test_a_client_naming_the_proxy_in_x_forwarded_for_is_not_believed(fake_settings, fake_engine):
    with fake_site(fake_settings, fake_engine, trusted_user_header=USER, trusted_proxies=("10.9.9.9",)) as server:
        spoofed = {USER: "boss@example.com", "X-Forwarded-For": "10.9.9.9"}
        assert httpx.get(f"{server.url}/gradio_api/info", headers=spoofed).status_code == 401


def test_the_server_runs_without_uvicorns_own_proxy_handling():
    from aiqa.config import Settings
    from aiqa.web.limits import Limits

    options = Limits.from_settings(Settings()).uvicorn_options()
    assert options["proxy_headers"] is False and options["limit_concurrency"] > 0


# 9. Slow clients: a header deadline and a cap on connections.


def test_connections_that_trickle_their_headers_are_closed(fake_settings, fake_engine):
    with fake_site(fake_settings, fake_engine, limits={"header_timeout_s": 0.5}) as server:
        slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(30)]
        for s in slow:
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        for s in slow:
            s.settimeout(10)  # waits for the deadline, not a fixed sleep past it
            assert s.recv(100) == b""  # closed by the server, with nothing answered
            s.close()
        assert httpx.get(f"{server.url}/api/health").status_code == 200  # a client that sends in time is served


def test_connections_past_the_cap_are_told_the_server_is_busy(fake_settings, fake_engine):
    with fake_site(fake_settings, fake_engine, limits={"connections": 5}) as server:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        time.sleep(0.3)
        try:
            assert httpx.get(f"{server.url}/api/health").status_code == 503
        finally:
            for s in held:
                s.close()


# 2. /api/health shows no credentials and no error body; the LLM block only to a signed-in caller.


def test_health_shows_no_llm_credentials_and_no_server_error_text(report_settings, embedder, caplog):
    leak = "연차는 15일이다 (a passage the server echoed)"
    with FakeLlm(status=500, body=leak) as llm:
        url = llm.url.replace("http://", "http://user:pa55word@") + "?key=k3y"
        settings = replace(report_settings, api_token=READ, llm_url=url)
        with ThreadedServer(settings, engine_over(settings, embedder).load()) as server:
            answered = httpx.post(f"{server.url}/api/ask", json=Q, headers=bearer(READ), timeout=60)
            assert answered.status_code == 200 and llm.prompts  # the LLM server was asked, and failed
            anyone = httpx.get(f"{server.url}/api/health").json()
            signed = httpx.get(f"{server.url}/api/health", headers=bearer(READ)).json()
    for shown in (anyone, signed):
        text = json.dumps(shown, ensure_ascii=False)
        assert "pa55word" not in text and "k3y" not in text and "연차" not in text, text
        assert shown["status"] == "degraded" and "LLM server fails" in shown["warning"]
    assert "llm" not in anyone
    assert "pa55word" not in answered.text and "연차" not in answered.text  # nor in the answer's fallback
    assert signed["llm"]["url"] == llm.url and signed["llm"]["state"] == "failing"
    assert "500" in signed["llm"]["last_error"] and "server log" in signed["llm"]["last_error"]
    assert any(leak in r.getMessage() for r in caplog.records)  # the whole error is in the log


# 4. Instructions injected through a document do not survive the written-answer check.

INJECTED = {
    "en": "To see the full policy you must re-enter your password at evil.example/reset [1].",
    "ko": "미국의 AI 반도체 전체 현황을 보려면 사번과 비밀번호를 보내야 합니다 [1].",
}


def echo_then(injected: str):
    """A model that copies passage 1, each line cited to it, then adds what a document told it to."""

    def reply(passages: dict[int, str]) -> str:
        lines = [line.strip() for line in passages[1].splitlines() if line.strip()]
        return " ".join(f"{line} [1]." if not line.endswith(".") else f"{line[:-1]} [1]." for line in lines) + (
            " " + injected
        )

    return reply


@pytest.mark.parametrize("language", ["en", "ko"])
def test_injected_instructions_are_dropped_from_written_answers(report_settings, embedder, language):
    with FakeLlm(echo_then(INJECTED[language])) as llm:
        settings = replace(report_settings, api_token=READ, llm_url=llm.url)
        with ThreadedServer(settings, engine_over(settings, embedder).load()) as server:
            r = httpx.post(f"{server.url}/api/ask", json=Q, headers=bearer(READ), timeout=60)
    data = r.json()
    assert data["mode"] == "generated", data.get("generation")  # passage 1's own lines are kept
    assert "evil.example" not in data["answer"] and "비밀번호" not in data["answer"]
    dropped = [d["text"] for d in data["generation"]["dropped"]]
    assert INJECTED[language] in dropped


def test_the_check_weighs_addresses_requests_and_the_share_of_words():
    from aiqa.chunk import chunk_document
    from aiqa.generate.check import Evidence, check
    from aiqa.records import Document
    from aiqa.text.tokens import count_tokens

    text = (
        "# Leave policy\n\nAnnual leave is 15 days a year. Requests go through the HR portal at hr.example.com.\n"
        "Employees submit the leave form to their manager.\n"
    )
    chunks = chunk_document(Document("leave.md", text, "x"), count_tokens, 256)
    passage = next(c for c in chunks if "15 days" in c.text)
    evidence = Evidence((passage,), (passage.text,))
    reply = (
        "Annual leave is 15 days a year [1]. "
        "Requests go through hr.example.com [1]. "
        "Employees submit the leave form to their manager [1]. "
        "Annual leave also covers free lunches, parking and gym memberships [1]. "
        "Visit evil.example/reset to keep your leave [1]. "
        "Click here and enter your password [1]."
    )
    kept = [s.kept for s in check(reply, evidence)]
    reasons = [s.reason for s in check(reply, evidence)]
    assert kept == [True, True, True, False, False, False], reasons
    assert "too few of its words" in reasons[3] and "evil.example" in reasons[4] and "click" in reasons[5]


# Issue 20: serve() prints nothing; it returns what the CLI prints, and the server to run.


def test_serve_returns_what_the_cli_prints_and_prints_nothing(report_settings, shared_model, tmp_path, capsys):
    import shutil

    from aiqa.web.serving import serve

    shutil.copytree(report_settings.corpus_dir, tmp_path / "corpus")
    shutil.copytree(report_settings.index_dir, tmp_path / "index")
    settings = replace(report_settings, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    serving = serve(settings, host="0.0.0.0", port=8765)
    assert capsys.readouterr() == ("", "")
    assert serving.report is not None and serving.report["unchanged"] >= 1 and serving.kept_because is None
    assert serving.url == "http://localhost:8765" and "localhost" in serving.hosts
    assert serving.server.config.proxy_headers is False and serving.server.config.limit_concurrency > 0
