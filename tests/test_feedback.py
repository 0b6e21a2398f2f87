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
