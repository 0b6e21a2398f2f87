"""The second hardening pass (issue 23) on the chat's side: Gradio's upload route, tokens on Gradio
routes, odd questions and upload names, and what the first pass did not try (a PDF bomb, polyglot
files, many streams at once, the admin tab driven through queue/join). Real server over HTTP.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import shutil
import zlib
from dataclasses import replace

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import engine_over
from tests.fake_llm import FakeLlm
from tests.test_hardening import ADMIN, READ, Q, bearer
from tests.test_security import _queue_call
from tests.test_server import ThreadedServer

# Real servers over HTTP, Gradio's queue, bombs read to their caps: the slow tier (tests/README.md).
pytestmark = pytest.mark.model


@contextlib.contextmanager
def own_site(base, engine, tmp_path, limits: dict | None = None, **changes):
    """The app over its own copy of `base`'s corpus and index (uploads change them), with both tokens."""
    shutil.copytree(base.corpus_dir, tmp_path / "corpus")
    shutil.copytree(base.index_dir, tmp_path / "index")
    s = replace(base, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", api_token=READ, admin_token=ADMIN)
    s = replace(s, **{"rate_limit": "1000/minute", **changes})
    with ThreadedServer(s, engine, limits=limits) as server:
        server.root = tmp_path
        yield server


@contextlib.contextmanager
def signed_in(url: str):
    with httpx.Client(base_url=url, timeout=120) as http:
        assert http.post("/login", data={"username": "kim", "password": READ}).status_code == 200
        yield http


def md(n: int) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (f"note{i}.md", f"# note {i}\n\ntext {i}".encode())) for i in range(n)]


# 5. Gradio's upload route: only with the admin token, capped per request and per client.


def test_gradios_upload_route_needs_the_admin_token(fake_settings, fake_engine, tmp_path):
    with (
        own_site(fake_settings, fake_engine, tmp_path, limits={"upload_files_per_hour": 6}) as site,
        signed_in(site.url) as http,
    ):
        refused = http.post("/gradio_api/upload", files=md(1))
        assert refused.status_code == 403 and "admin token" in refused.json()["error"]
        http.cookies.set("aiqa-admin", ADMIN, path="/gradio_api/upload")
        taken = http.post("/gradio_api/upload", files=md(2))
        assert taken.status_code == 200 and len(taken.json()) == 2
        many = http.post("/gradio_api/upload", files=md(21))
        assert many.status_code == 413 and "20 files" in many.json()["error"]
        assert http.post("/gradio_api/upload", files=md(4)).status_code == 200  # 6 files this hour
        over = http.post("/gradio_api/upload", files=md(1))
        assert over.status_code == 429 and int(over.headers["retry-after"]) > 0
    with own_site(fake_settings, fake_engine, tmp_path / "off", admin_token=None) as site, signed_in(site.url) as http:
        http.cookies.set("aiqa-admin", "x", path="/gradio_api/upload")
        off = http.post("/gradio_api/upload", files=md(1))
        assert off.status_code == 403 and "AIQA_ADMIN_TOKEN" in off.json()["error"]


# 6. A valid bearer token on a Gradio route is no wrong token.


def test_only_tokens_that_aiqa_refuses_count_as_wrong(fake_settings, fake_engine, tmp_path):
    with own_site(fake_settings, fake_engine, tmp_path, bad_token_limit="3/minute") as site:
        for _ in range(5):  # Gradio wants its login cookie here: its 401 is not aiqa refusing the token
            assert httpx.get(f"{site.url}/gradio_api/info", headers=bearer(READ)).status_code == 401
        assert httpx.post(f"{site.url}/api/ask", json=Q, headers=bearer(READ), timeout=60).status_code == 200
        codes = [httpx.get(f"{site.url}/gradio_api/info", headers=bearer(f"guess{i}")).status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]


# 7. Rare Hangul syllables: no crash, no exception text; every syllable block goes through analysis.


def test_rare_hangul_syllables_are_no_error(fake_settings, fake_engine, tmp_path):
    with own_site(fake_settings, fake_engine, tmp_path) as site:
        r = httpx.post(f"{site.url}/api/ask", json={"question": "괋뷇 휴가는?"}, headers=bearer(READ), timeout=60)
        assert r.status_code == 200, r.text
        with signed_in(site.url) as http:
            config = http.get("/config").json()
            fn_index = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "ask")
            out = json.dumps(_queue_call(http, fn_index, ["괋뷇 휴가는?", [], "ko"]), ensure_ascii=False)
    assert "aiqa-reply" in out and "KeyError" not in out and "Traceback" not in out


def test_every_hangul_syllable_pair_goes_through_the_name_matcher(fake_engine):
    from aiqa.text.korean import LatinNames

    names = LatinNames({"huawei", "baidu", "nvidia", "alibaba"})
    for code in range(0xAC00, 0xD7A4):
        names.match(chr(code) * 2)  # no exception, whatever the romaniser lacks
    assert names.match("화웨이") == "huawei"
    assert names.match.cache_info().currsize <= names.match.cache_info().maxsize


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3), min_size=1, max_size=12))
def test_any_hangul_question_is_analysed_without_error(fake_engine, words):
    fake_engine.ask(f"{words} 휴가는?")


# 8. Upload names: no format or separator characters; duplicates compared in NFKC.

BAD_NAMES = ["a\u200fb.md", "a\u061cb.md", "a\u200bb.md", "\ufeffa.md", "a\u2215b.md", "a\u2028b.md", "ａ／b.md"]


def test_upload_names_with_format_or_separator_characters_are_refused(fake_settings, fake_engine, tmp_path):
    with own_site(fake_settings, fake_engine, tmp_path) as site:
        for name in BAD_NAMES:
            files = [("files", (name, b"# memo\n\ntext"))]
            r = httpx.post(f"{site.url}/api/documents", files=files, headers=bearer(ADMIN), timeout=60)
            assert r.status_code == 400 and re.search("rename|plain file name", r.json()["error"]), (name, r.text)
        twins = [("files", ("report.md", b"# one")), ("files", ("ｒｅｐｏｒｔ.md", b"# two"))]
        r = httpx.post(f"{site.url}/api/documents", files=twins, headers=bearer(ADMIN), timeout=60)
        assert r.status_code == 400 and "rename" in r.json()["error"]
        assert not list((site.root / "corpus").glob("*.md"))


# What the first pass did not try.


def pdf_bomb(megabytes: int) -> bytes:
    """A small PDF whose one page's content stream inflates to `megabytes` MB."""
    stream = zlib.compress(b"BT /F1 12 Tf (x) Tj ET\n" + b" " * (megabytes * 1_000_000), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    xref += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + xref + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, len(out))


def test_a_pdf_bomb_and_polyglot_files_are_skipped_or_read_as_text(fake_settings, fake_engine, tmp_path):
    polyglot = b"GIF89a/*<svg onload=alert(1)>*/=1;<script>window.__xss=1</script>\n# memo\n\nplain words here\n"
    files = [
        ("files", ("bomb.pdf", pdf_bomb(300))),  # 300 MB inflated from 0.3 MB
        ("files", ("gif-script.md", polyglot)),
        ("files", ("zip-pdf.pdf", b"PK\x03\x04" + b"\x00" * 200 + b"%PDF-1.4\n%%EOF\n")),
    ]
    with own_site(fake_settings, fake_engine, tmp_path, max_file_mb=2) as site, signed_in(site.url) as http:
        r = httpx.post(f"{site.url}/api/documents", files=files, headers=bearer(ADMIN), timeout=300)
        assert r.status_code == 200, r.text
        report = r.json()["report"]
        assert {s["path"] for s in report["skipped"]} == {"bomb.pdf", "zip-pdf.pdf"} and report["added"] == 1
        assert report["steps"]["read"] < 30  # pypdf's own inflate limit: the bomb is not unpacked whole
        assert httpx.get(f"{site.url}/api/health", timeout=10).status_code == 200
        # The polyglot is text to the index; the corpus is never served back as a file.
        assert http.get(f"/gradio_api/file={site.root}/corpus/gif-script.md").status_code in (403, 404)


def test_many_streams_at_once_all_end_and_the_server_stays_responsive(report_settings, embedder, tmp_path):
    with FakeLlm(lambda passages: "미국의 AI 반도체는 NVIDIA가 앞선다 [1].") as llm:
        base = replace(report_settings, llm_url=llm.url)
        with own_site(base, engine_over(base, embedder).load(), tmp_path) as site:

            def stream(_: int) -> tuple[int, str]:
                body = {**Q, "stream": True}
                with httpx.stream("POST", f"{site.url}/api/ask", json=body, headers=bearer(READ), timeout=120) as r:
                    kinds = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
                return r.status_code, kinds[-1] if kinds else ""

            with concurrent.futures.ThreadPoolExecutor(24) as pool:
                answers = list(pool.map(stream, range(24)))
                health = httpx.get(f"{site.url}/api/health", timeout=10)
    assert health.status_code == 200
    assert all(status == 503 or (status == 200 and last == "answer") for status, last in answers), answers
    assert sum(status == 200 for status, _ in answers) >= 8


def test_the_admin_tab_through_queue_join_needs_the_admin_token(fake_settings, fake_engine, tmp_path):
    with own_site(fake_settings, fake_engine, tmp_path) as site, signed_in(site.url) as http:
        config = http.get("/config").json()
        files_id = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "aiqa-files")
        fn_index = next(i for i, d in enumerate(config["dependencies"]) if files_id in d["inputs"])
        before = sorted(p.name for p in (site.root / "corpus").iterdir())
        for token in ("", READ, "guess"):  # the read token of the page does not open the admin tab
            out = json.dumps(_queue_call(http, fn_index, [token, None, "ko"]), ensure_ascii=False)
            assert "aiqa-error" in out and "aiqa-report" not in out, token
        out = json.dumps(_queue_call(http, fn_index, [ADMIN, None, "ko"]), ensure_ascii=False)
        assert "aiqa-report" in out  # the admin token rebuilds
        assert sorted(p.name for p in (site.root / "corpus").iterdir()) == before
