"""The OpenAI-compatible endpoint with the real `openai` client against the real server (uvicorn, HTTP).

The answers' content is checked on the real model and the bundled report; the access groups, the
errors and the rate limit over the fake embedder, which needs no model.
"""

from __future__ import annotations

from dataclasses import replace

import httpx
import openai
import pytest

from aiqa.engine import Engine
from tests.conftest import ADMIN, TOKEN
from tests.fakes import FakeEmbedder
from tests.test_access import HR_TOKEN, PUBLIC_DOCS, built, leaks
from tests.test_server import ThreadedServer


def client(url: str, key: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def report_site(report_settings, engine):
    settings = replace(report_settings, api_token=TOKEN)
    with ThreadedServer(settings, engine) as server:
        yield server.url


@pytest.fixture(scope="module")
def groups_site(tmp_path_factory, cache_dir):
    embedder = FakeEmbedder()
    settings = built(tmp_path_factory.mktemp("openai-groups"), cache_dir, embedder)
    settings = replace(
        settings, api_token=TOKEN, admin_token=ADMIN, read_tokens={HR_TOKEN: frozenset({"hr"})}, rate_limit="200/minute"
    )
    with ThreadedServer(settings, Engine(settings, embedder=embedder, generator=None).load()) as server:
        yield server.url


@pytest.fixture(scope="module")
def real_groups_site(tmp_path_factory, cache_dir, embedder):
    """The corpus of test_access (HR and finance documents restricted) on the real model."""
    settings = built(tmp_path_factory.mktemp("openai-real-groups"), cache_dir, embedder)
    settings = replace(settings, api_token=TOKEN, read_tokens={HR_TOKEN: frozenset({"hr"})})
    with ThreadedServer(settings, Engine(settings, embedder=embedder, generator=None).load()) as server:
        yield server.url


def test_the_one_model_is_aiqa(groups_site):
    assert [m.id for m in client(groups_site).models.list()] == ["aiqa"]
    assert client(groups_site).models.retrieve("aiqa").owned_by == "aiqa"


def test_an_answer_has_markers_sources_and_structured_citations(report_site):
    ask = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "미국이 가진 세계 최강 AI 칩에는 어떤 것들이 있나?"},
    ]
    done = client(report_site).chat.completions.create(model="aiqa", messages=ask)
    text = done.choices[0].message.content
    citations = done.model_extra["citations"]
    assert citations and "[1]" in text
    assert "출처:\n[1] us-china-ai-race.txt" in text
    assert {"n", "source", "quote", "passage"} <= set(citations[0])
    assert citations[0]["quote"] in done.model_extra["citations"][0]["passage"]

    pieces = list(client(report_site).chat.completions.create(model="aiqa", messages=ask, stream=True))
    streamed = "".join(p.choices[0].delta.content or "" for p in pieces)
    assert streamed == text
    assert pieces[-1].choices[0].finish_reason == "stop"
    assert pieces[-1].model_extra["citations"] == citations


def test_earlier_messages_are_the_history(report_site):
    messages = [
        {"role": "user", "content": "미국의 AI 반도체는?"},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": [{"type": "text", "text": "그럼 중국은?"}]},
    ]
    done = client(report_site).chat.completions.create(model="aiqa", messages=messages)
    assert "반도체" in done.model_extra["aiqa"]["resolved_question"]


def test_each_key_reads_its_groups(real_groups_site):
    asked = "블루문 프로젝트 팀장의 연봉은?"
    question = [{"role": "user", "content": asked}]
    public = client(real_groups_site).chat.completions.create(model="aiqa", messages=question)
    assert {c["source"] for c in public.model_extra["citations"]} <= set(PUBLIC_DOCS)
    assert not leaks(public.model_dump_json(), asked)
    for chunk in client(real_groups_site).chat.completions.create(model="aiqa", messages=question, stream=True):
        assert not leaks(chunk.model_dump_json(), asked)
    hr = client(real_groups_site, HR_TOKEN).chat.completions.create(model="aiqa", messages=question)
    assert "9천만" in hr.choices[0].message.content
    assert "hr/salary.md" in {c["source"] for c in hr.model_extra["citations"]}


@pytest.mark.parametrize(
    ("call", "error", "code"),
    [
        (
            lambda c: c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]),
            openai.NotFoundError,
            "model_not_found",
        ),
        (
            lambda c: c.chat.completions.create(model="aiqa", messages=[{"role": "system", "content": "hi"}]),
            openai.BadRequestError,
            None,
        ),
        (lambda c: c.chat.completions.create(model="aiqa", messages=[]), openai.BadRequestError, None),
        (
            lambda c: c.chat.completions.create(model="aiqa", messages=[{"role": "user", "content": " "}]),
            openai.BadRequestError,
            None,
        ),
        (
            lambda c: c.chat.completions.create(model="aiqa", messages=[{"role": "robot", "content": "hi"}]),
            openai.BadRequestError,
            None,
        ),
    ],
)
def test_bad_requests_get_openai_error_objects(groups_site, call, error, code):
    with pytest.raises(error) as caught:
        call(client(groups_site))
    body = caught.value.body
    assert isinstance(body, dict) and body["message"] and body["type"]
    assert body.get("code") == code


def test_a_wrong_key_and_a_bad_body_get_openai_error_objects(groups_site):
    with pytest.raises(openai.AuthenticationError) as caught:
        client(groups_site, "wrong-key").models.list()
    assert caught.value.body["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        client(groups_site, "wrong-key").chat.completions.create(
            model="aiqa", messages=[{"role": "user", "content": "x"}]
        )
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    r = httpx.post(f"{groups_site}/v1/chat/completions", content=b"{not json", headers=auth, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.get(f"{groups_site}/v1/embeddings", headers=auth, timeout=30)
    assert r.status_code == 404 and "message" in r.json()["error"]


def test_the_rate_limit_is_the_questions_one(fake_settings, fake_engine):
    settings = replace(fake_settings, api_token=TOKEN, rate_limit="2/minute")
    with ThreadedServer(settings, fake_engine) as server:
        ask = [{"role": "user", "content": "미국의 AI 반도체는?"}]
        for _ in range(2):
            client(server.url).chat.completions.create(model="aiqa", messages=ask)
        with pytest.raises(openai.RateLimitError) as caught:
            client(server.url).chat.completions.create(model="aiqa", messages=ask)
        assert caught.value.body["code"] == "rate_limit_exceeded"
