"""Written answers with a real model server (tests/llmserver.py): a small, weak model on purpose.

What a weak model writes is not under test; that aiqa shows only what the passages hold is: made-up
numbers are dropped, too little left falls back to the quotes, a refusal never asks the model, and a
server that dies mid-answer ends in the extractive answer, in the engine and over HTTP.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from aiqa.chunk import chunk_document
from aiqa.contract import ask_json, health_json
from aiqa.contract import events as events_of
from aiqa.generate import Generator
from aiqa.generate.check import numbers
from aiqa.generate.client import ChatClient
from aiqa.records import Document
from aiqa.text.tokens import count_tokens

from .conftest import REPORT_QUESTIONS, TOKEN, Background, free_port
from .llmserver import LlmServer
from .test_generate import TEXT

pytestmark = pytest.mark.llm


def writer(url: str) -> Generator:
    # Three passages keep a prompt near 500 tokens: some seconds a question on 2 cores.
    return Generator(ChatClient(url, "test", read_timeout_s=120, max_tokens=160), context_tokens=2048, passages=3)


def held(result: dict) -> set[str]:
    return set().union(*(numbers(c["passage"]) for c in result["citations"]))


def test_written_answers_state_only_what_their_citations_hold(engine, llm_server, monkeypatch):
    monkeypatch.setattr(engine, "generator", writer(llm_server.url))
    questions = [json.loads(line)["q"] for line in REPORT_QUESTIONS.read_text(encoding="utf-8").splitlines()[:4]]
    results = [ask_json(engine, q) for q in questions]
    for r in results:
        assert not r["abstained"] and r["generation"]["sentences"] >= r["generation"]["kept"]
        if r["mode"] == "generated":
            written = numbers(r["answer"].replace("[", " ").replace("]", " ")) - {str(c["n"]) for c in r["citations"]}
            assert written <= held(r), r["answer"]
            assert all(c["quote"] and c["quote"] in c["passage"] for c in r["citations"])
            assert r["extractive"]["answer"] and r["generation"]["kept"] >= 1
        else:
            assert r["generation"]["fallback"]
    assert any(r["mode"] == "generated" for r in results), [r["generation"] for r in results]


def test_made_up_numbers_are_dropped(llm_server):
    doc = Document("annual.md", TEXT, "x")
    chunks = [c for c in chunk_document(doc, count_tokens, 256) if c.kind != "title"]
    stored = {"annual.md": Document("annual.md", TEXT, "x")}
    generator = writer(llm_server.url)
    # The passages hold no target, head count or margin: a weak model fills them in.
    prompt = generator.prompt("별빛 상사의 2030년 매출 목표와 직원 수, 영업이익률은 각각 얼마인가?", chunks, "ko")
    reply = "".join(generator.stream(prompt))
    result = generator.finish(reply, prompt, stored, 0.0)
    seen = set().union(*(numbers(t) for t in prompt.texts))
    invented = [s for s in result.sentences if numbers(s.bare) - seen]
    if not invented:
        pytest.skip(f"the model made up no number this time: {reply!r}")
    assert not any(s.kept for s in invented)
    assert not (numbers(result.answer) - seen - {"1", "2", "3"})  # markers aside, only what the passages hold


def test_a_refused_question_never_asks_the_model(engine, llm_server, monkeypatch):
    generator = writer(llm_server.url)
    monkeypatch.setattr(engine, "generator", generator)
    result = ask_json(engine, "김치찌개 끓이는 법을 알려줘")
    assert result["abstained"] and result["mode"] == "extractive" and "generation" not in result
    assert generator.status.answers == 0 and generator.status.failures == 0


def test_a_server_that_dies_mid_answer_leaves_the_quoted_answer(engine, llm_server, monkeypatch):
    with LlmServer(llm_server.model) as doomed:
        generator = writer(doomed.url)
        monkeypatch.setattr(engine, "generator", generator)
        events = events_of(engine.ask("미국의 AI 반도체는?"), engine.generator)
        kind, extractive = next(events)
        assert kind == "extractive"
        kind, _ = next(events)
        assert kind == "token"
        doomed.kill()
        rest = list(events)
    final = rest[-1][1]
    assert final["mode"] == "extractive" and final["answer"] == extractive["answer"]
    assert final["generation"]["fallback"] and generator.status.failing
    assert health_json(engine)["llm"]["state"] == "failing"


def sse(response: httpx.Response) -> list[tuple[str, dict]]:
    events, kind = [], ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            events.append((kind, json.loads(line[5:])))
    return events


def test_the_api_streams_the_quotes_then_the_written_answer(report_settings, llm_server, tmp_path):
    port = free_port()
    env = {
        "AIQA_CACHE_DIR": str(report_settings.cache_dir),
        "AIQA_CORPUS": str(report_settings.corpus_dir),
        "AIQA_INDEX": str(report_settings.index_dir),
        "AIQA_API_TOKEN": TOKEN,
        "AIQA_LLM_URL": llm_server.url,
        "AIQA_LLM_PASSAGES": "3",
        "AIQA_LLM_MAX_TOKENS": "160",
    }
    process = Background(tmp_path, "serve", "--port", str(port), env=env)
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/api/health", headers=auth, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.proc.poll() is None, process.stderr()
            time.sleep(0.5)
        body = {"question": "미국의 AI 반도체는?", "stream": True}
        with httpx.stream("POST", f"{url}/api/ask", json=body, headers=auth, timeout=180) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            events = sse(response)
        kinds = [k for k, _ in events]
        assert kinds[0] == "extractive" and kinds[-1] == "answer" and "token" in kinds
        assert events[-1][1]["mode"] in ("generated", "extractive") and "generation" in events[-1][1]
        off_topic = {"question": "김치찌개 끓이는 법을 알려줘"}
        refused = httpx.post(f"{url}/api/ask", json=off_topic, headers=auth, timeout=60)
        assert refused.json()["abstained"] and "generation" not in refused.json()
        health = httpx.get(f"{url}/api/health", headers=auth, timeout=10).json()
        assert health["llm"]["url"] == llm_server.url and health["llm"]["answers"] == 1
    finally:
        process.stop()
