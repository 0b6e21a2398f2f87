"""Feedback: answers kept under their answer_id, ratings over HTTP, the report, the export `aiqa calibrate` reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import httpx
import pytest

from aiqa.engine import Engine
from aiqa.errors import BadRequest, BadSetting
from aiqa.evaluate import load_cases
from aiqa.feedback import SqliteFeedback, open_feedback
from aiqa.report import grouped, labelled, per_day
from tests.conftest import SRC, TOKEN
from tests.fakes import FakeEmbedder
from tests.test_access import HR_TOKEN, SECRETS, built, events_of
from tests.test_server import ThreadedServer

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def site(tmp_path_factory, cache_dir):
    embedder = FakeEmbedder()
    settings = built(tmp_path_factory.mktemp("feedback"), cache_dir, embedder)
    settings = replace(settings, api_token=TOKEN, read_tokens={HR_TOKEN: frozenset({"hr"})}, rate_limit="500/minute")
    with ThreadedServer(settings, Engine(settings, embedder=embedder, generator=None).load()) as server:
        server.settings = settings
        yield server


def ask(site, question, headers=AUTH, **body):
    r = httpx.post(f"{site.url}/api/ask", json={"question": question, **body}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r


def rate(site, body, headers=AUTH):
    return httpx.post(f"{site.url}/api/feedback", json=body, headers=headers, timeout=30)


def test_a_rating_is_tied_to_the_answer_shown(site):
    answer = ask(site, "여름 휴가는 며칠인가요?").json()
    r = rate(site, {"answer_id": answer["answer_id"], "rating": "down", "comment": "  휴가 일수가 틀렸어요 "})
    assert r.status_code == 200 and r.json()["ok"], r.text
    kept = {a.id: a for a in open_feedback(site.settings).answers()}[answer["answer_id"]]
    assert kept.question == answer["question"] and kept.answer == answer["answer"]
    assert kept.citations == answer["citations"] and kept.confidence == answer["confidence"]
    assert kept.index_version and kept.groups == []
    assert kept.ratings == [(-1, "휴가 일수가 틀렸어요")] and kept.disliked


def test_a_streamed_answer_carries_its_id_and_is_kept_as_sent(site):
    streamed = events_of(ask(site, "회사 식당은 몇 시에 여나요?", stream=True).text)
    ids = {event.get("answer_id") for event in streamed}
    assert len(ids) == 1 and None not in ids
    (ident,) = ids
    assert rate(site, {"answer_id": ident, "rating": "up"}).status_code == 200
    kept = {a.id: a for a in open_feedback(site.settings).answers()}[ident]
    assert kept.answer == streamed[-1]["answer"] and kept.liked


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"answer_id": "0" * 32, "rating": "up"}, "no answer"),
        ({"answer_id": "x", "rating": "meh"}, "rating must be"),
        ({"answer_id": "x", "rating": True}, "rating must be"),
        ({"rating": "up"}, "answer_id"),
        ({"answer_id": "x", "rating": "up", "comment": "c" * 2001}, "at most 2000"),
    ],
)
def test_bad_feedback_says_what_to_send(site, body, says):
    r = rate(site, body)
    assert r.status_code == 400 and says in r.json()["error"], r.text


def test_feedback_needs_the_token(site):
    answer = ask(site, "여름 휴가는 며칠인가요?").json()
    assert rate(site, {"answer_id": answer["answer_id"], "rating": "up"}, headers={}).status_code == 401


def test_the_store_holds_nothing_a_user_could_not_read(site):
    for question in ("블루문 프로젝트 팀장의 연봉은?", "오로라 계획의 예산은?"):
        ask(site, question)
    for kept in open_feedback(site.settings).answers():
        if kept.groups == []:  # asked by the public
            text = json.dumps([kept.answer, kept.citations, kept.passages], ensure_ascii=False)
            assert not [s for s in SECRETS if s in text and s not in kept.question], kept


def test_report_groups_flagged_questions_and_exports_labels(tmp_path, embedder):
    store = SqliteFeedback(tmp_path / "feedback.sqlite3")

    def shown(question, abstained, confidence, quote="여름 휴가는 5일입니다."):
        citations = [] if abstained else [{"n": 1, "source": "hr/holidays.md", "quote": quote, "passage": quote}]
        passages = [{"source": "hr/holidays.md", "locator": "lines 1-3", "text": quote, "rank": 1, "score": 0.5}]
        ident = os.urandom(16).hex()
        store.record(
            ident,
            {
                "question": question,
                "answer": "..." if abstained else quote,
                "abstained": abstained,
                "confidence": confidence,
                "citations": citations,
                "passages": passages,
            },
            frozenset(),
        )
        return ident

    for q in ("연차는 며칠인가요?", "연차 휴가는 며칠이에요?", "연차가 며칠 있나요?"):
        shown(q, True, 0.1)
    shown("주차장은 어디에 있나요?", True, 0.2)
    store.rate(shown("식당은 몇 시에 여나요?", False, 0.9), -1, "12시가 아니에요")
    store.rate(shown("여름 휴가는 며칠인가요?", False, 0.95), 1)
    shown("회의실 예약은 어떻게 하나요?", False, 0.97)  # answered, confidently, not rated: not flagged
    answers = store.answers()
    groups = grouped(answers, embedder.embed_queries)
    assert [len(g.questions) for g in groups] == [3, 1, 1]
    assert groups[0].why == {"refused": 3} and groups[0].questions[0] == "연차는 며칠인가요?"
    by_question = {g.questions[0]: g.as_json() for g in groups}
    assert by_question["식당은 몇 시에 여나요?"]["comments"] == ["12시가 아니에요"]
    assert by_question["식당은 몇 시에 여나요?"]["why"] == {"disliked": 1}
    assert groups[0].as_json()["passages_from"] == ["hr/holidays.md"]
    assert per_day(answers)[0] == {
        "day": time.strftime("%Y-%m-%d", time.gmtime()),
        "answered": 3,
        "refused": 4,
        "disliked": 1,
    }
    lines = labelled(answers)
    assert [(x["q"], x["answerable"], x["gold"]) for x in lines] == [
        ("식당은 몇 시에 여나요?", False, []),
        ("여름 휴가는 며칠인가요?", True, ["여름 휴가는 5일입니다."]),
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    cases = load_cases(path)  # what `aiqa calibrate` reads
    assert [c.answerable for c in cases] == [False, True] and cases[1].gold == ("여름 휴가는 5일입니다.",)


WRITER = """
import sys
from aiqa.feedback import SqliteFeedback
store = SqliteFeedback(__import__("pathlib").Path(sys.argv[1]))
n = 0
while True:
    ident = f"{n:032x}"
    store.record(ident, {"question": "q", "answer": "a", "abstained": False, "confidence": 0.5,
                         "citations": [], "passages": []}, None)
    print(ident, flush=True)  # acknowledged: committed before this line
    n += 1
"""


def test_nothing_acknowledged_is_lost_to_a_kill(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acknowledged = [proc.stdout.readline().strip() for _ in range(200)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = {a.id for a in SqliteFeedback(path).answers()}
    assert set(acknowledged) <= kept


def _initdb() -> str | None:
    import glob
    import shutil

    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    return found


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server of its own (Debian's `postgresql`), started for these tests and stopped after."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[test]'")
    initdb = _initdb()
    if initdb is None:
        pytest.skip("no PostgreSQL server here (initdb not found): apt-get install postgresql, or run scripts/test.sh")
    from pathlib import Path

    from tests.conftest import free_port

    bin_dir = Path(initdb).resolve().parent
    import shutil
    import tempfile

    # Not under pytest's temporary folder: that one is private to the user running the tests.
    root = Path(tempfile.mkdtemp(prefix="aiqa-pg-"))
    data, port = root / "data", free_port()
    # PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--no-sync")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=on"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.model  # a PostgreSQL server of its own takes seconds to start (tests/README.md)
def test_the_postgres_store_keeps_answers_and_ratings(postgres_url, tmp_path):
    from aiqa.config import Settings

    settings = Settings(index_dir=tmp_path / "index", feedback_url=postgres_url)
    store = open_feedback(settings)
    answer = {
        "question": "연차는?",
        "answer": "15일 [1]",
        "abstained": False,
        "confidence": 0.8,
        "citations": [{"n": 1, "source": "hr/leave.md", "quote": "15일"}],
        "passages": [{"source": "hr/leave.md", "locator": "p. 1", "text": "연차는 15일", "score": 1.0}],
    }
    store.record("a" * 32, answer, frozenset({"hr"}))
    assert store.rate("a" * 32, -1, "틀림") > 0
    with pytest.raises(BadRequest, match="no answer"):
        store.rate("b" * 32, 1)
    (kept,) = open_feedback(settings).answers()  # another connection: committed, not only in this session
    assert (kept.question, kept.groups, kept.ratings, kept.disliked) == ("연차는?", ["hr"], [(-1, "틀림")], True)
    assert kept.passages == [{"source": "hr/leave.md", "locator": "p. 1", "text": "연차는 15일"}]
    assert not (tmp_path / "index").exists()  # nothing written beside the index


def test_an_unknown_feedback_url_says_what_to_give(tmp_path):
    from aiqa.config import Settings

    with pytest.raises(BadSetting, match="postgresql://"):
        open_feedback(Settings(index_dir=tmp_path, feedback_url="mysql://db/x"))


def test_the_admin_tab_shows_the_report_with_the_admin_token(tmp_path, fake_engine):
    from aiqa.config import Settings as Plain
    from aiqa.web.guard import Throttle
    from aiqa.web.ratings import Recorder
    from aiqa.web.ui import _Handlers

    settings = replace(Plain(index_dir=tmp_path), admin_token="adm1n-token-for-the-report")
    recorder = Recorder(settings, lambda: "v-test")
    answer = {
        "question": "<b>연차</b>는 며칠?",
        "answer": "...",
        "abstained": True,
        "confidence": 0.1,
        "citations": [],
        "passages": [],
    }
    recorder.keep("f" * 32, answer, frozenset())
    recorder.store.rate("f" * 32, -1, "없어요")
    handlers = _Handlers(fake_engine, settings, Throttle(settings), recorder=recorder)
    assert "<b>연차" not in handlers.report("wrong", "ko") and "연차" not in handlers.report("wrong", "ko")
    shown = handlers.report("adm1n-token-for-the-report", "ko")
    assert "&lt;b&gt;연차&lt;/b&gt;는 며칠?" in shown and "“없어요”" in shown
    assert time.strftime("%Y-%m-%d", time.gmtime()) in shown and "답 없음 1" in shown


def test_records_past_the_retention_are_dropped(tmp_path):
    import sqlite3

    store = SqliteFeedback(tmp_path / "feedback.sqlite3", retention_days=30)
    answer = {"question": "q", "answer": "a", "abstained": False, "confidence": 0.5, "citations": [], "passages": []}
    for ident in ("a" * 32, "b" * 32):
        store.record(ident, answer, None)
        store.rate(ident, 1, "")
    with sqlite3.connect(tmp_path / "feedback.sqlite3") as db:
        db.execute("UPDATE answers SET at = at - 31 * 86400 WHERE id = ?", ("a" * 32,))
    store.prune()
    assert [(a.id, a.ratings) for a in store.answers()] == [("b" * 32, [(1, "")])]
    with sqlite3.connect(tmp_path / "feedback.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM feedback").fetchone() == (1,)
