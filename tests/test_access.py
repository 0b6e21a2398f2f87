"""Access groups end to end: who may read what, over HTTP on both stores, and no leak for any group assignment.

Two users of different groups ask the real server (uvicorn in a thread, real FAISS or Milvus Lite)
about a corpus whose HR and finance documents are restricted; nothing of those documents may reach
the other user by any route. The property test holds a stronger claim: a reader's reply over the
whole index is the reply over an index built of only the documents they may read, so restricted
documents cannot shape it in any way (their words, their rarity, their passages).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from aiqa.build import build_index
from aiqa.config import Settings
from aiqa.contract import health_json, reply_json
from aiqa.engine import Engine
from aiqa.errors import BadSetting
from aiqa.index.access import AccessRules, row_filter
from tests.conftest import ADMIN, TOKEN
from tests.fakes import FakeEmbedder
from tests.test_server import ThreadedServer

HR_TOKEN = "hr-reader-token-0001"
PUBLIC_DOCS = {
    "guide.md": "# 사내 안내\n\n회사 식당은 12시에 문을 엽니다. 주차장은 지하 2층에 있습니다.\n",
    "hr/holidays.md": "# 휴가 규정\n\n여름 휴가는 5일입니다. 휴가 신청은 인사 시스템에서 합니다.\n",
}
SECRET_DOCS = {
    "hr/salary.md": "# 연봉 규정\n\n## 블루문 보상\n\n"
    "블루문 프로젝트 팀장의 연봉은 9천만 원입니다. 성과급은 매년 3월에 지급됩니다.\n",
    "finance/budget.md": "# 예산 계획\n\n오로라 계획의 예산은 50억 원입니다. 집행은 분기마다 보고합니다.\n",
}
RULES = '[groups]\n"hr/holidays.md" = ["*"]\n"finance/**" = ["finance", "exec"]\n'
# What only the restricted documents hold: none of it may reach a reader outside their groups.
SECRETS = ("블루문", "9천만", "성과급", "오로라", "50억", "hr/salary.md", "finance/budget.md", "연봉 규정", "예산 계획")
QUESTIONS = (
    "블루문 프로젝트 팀장의 연봉은?",
    "오로라 계획의 예산은 얼마인가요?",
    "성과급은 언제 지급되나요?",
    "여름 휴가는 며칠인가요?",
    "회사 식당은 몇 시에 여나요?",
)


def write_corpus(folder: Path, docs: dict[str, str], rules: str | None = RULES) -> None:
    for name, text in docs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    if rules is not None:
        (folder / ".access.toml").write_text(rules, encoding="utf-8")


def built(root: Path, cache_dir: Path, embedder, store: str = "faiss", docs=None, rules=RULES) -> Settings:
    settings = Settings(
        corpus_dir=root / "corpus",
        index_dir=root / "index",
        cache_dir=cache_dir,
        embed_model=embedder.name,
        store=store,
        milvus_uri=str(root / "milvus.db"),
        milvus_name=f"access_{root.name.replace('-', '_')}"[:60],
    )
    settings.corpus_dir.mkdir(parents=True)
    write_corpus(settings.corpus_dir, docs if docs is not None else {**PUBLIC_DOCS, **SECRET_DOCS}, rules)
    build_index(settings, embedder_factory=lambda: embedder)
    return settings


def leaks(text: str, question: str = "") -> list[str]:
    """The secrets in a reply besides the ones the user's own question holds."""
    return [s for s in SECRETS if s in text.replace(question, "") and s not in question]


def shown(data: dict) -> str:
    """A reply's JSON without the echoed question (the user's own words)."""
    return json.dumps({k: v for k, v in data.items() if k not in ("question", "resolved_question")}, ensure_ascii=False)


def events_of(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


# --- the rules ------------------------------------------------------------------------------------------


def test_folders_and_rules_decide_the_groups(tmp_path):
    write_corpus(tmp_path, {}, 'folders = true\n[groups]\n"hr/open/*.md" = ["*"]\n"**/*.xlsx" = ["finance", "exec"]\n')
    rules = AccessRules.of_corpus(tmp_path)
    assert rules.groups_of("top.md") == ()
    assert rules.groups_of("hr/policy.md") == ("hr",)
    assert rules.groups_of("hr/deep/policy.md") == ("hr",)
    assert rules.groups_of("hr/open/notice.md") == ()
    assert rules.groups_of("hr/open/deeper/notice.md") == ("hr",)  # `*` stays within one folder
    assert rules.groups_of("sales/q3.xlsx") == ("exec", "finance")
    assert AccessRules.of_corpus(tmp_path / "none").groups_of("hr/policy.md") == ()  # no rules file: everyone


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("folders = maybe", "not valid TOML"),
        ('[groups]\n"hr/**" = []', "needs a list of groups"),
        ('[groups]\n"hr/**" = ["a,b"]', "no comma"),
        ("owners = 1", "unknown key"),
    ],
)
def test_a_bad_rules_file_says_what_to_fix(tmp_path, text, says):
    (tmp_path / ".access.toml").write_text(text, encoding="utf-8")
    with pytest.raises(BadSetting, match=says):
        AccessRules.of_corpus(tmp_path)


def test_milvus_filter_holds_exactly_the_rows():
    import numpy as np

    rows = np.array([0, 1, 2, 5, 7, 8])
    expression = row_filter(rows)
    assert expression == "(row >= 0 and row <= 2) or row == 5 or (row >= 7 and row <= 8)"
    held = [r for r in range(10) if eval(expression.replace("and", " and ").replace("or", " or "), {"row": r})]
    assert held == list(rows)


def test_a_rule_change_alone_rebuilds(tmp_path, cache_dir):
    embedder = FakeEmbedder()
    settings = built(tmp_path, cache_dir, embedder)
    engine = Engine(settings, embedder=embedder)
    assert health_json(engine, frozenset())["documents"] == 2
    (settings.corpus_dir / ".access.toml").write_text('folders = false\n[groups]\n"finance/**" = ["finance"]\n')
    report = build_index(settings, embedder_factory=lambda: embedder)
    assert report.embedded_chunks == 0 and report.index_version  # nothing re-embedded, a new version all the same
    assert health_json(engine, frozenset())["documents"] == 3


# --- two users over HTTP, both stores --------------------------------------------------------------------

STORES = ["faiss", pytest.param("milvus", marks=pytest.mark.model)]


@pytest.fixture(scope="module", params=STORES)
def site(request, tmp_path_factory, cache_dir):
    if request.param == "milvus":
        pytest.importorskip("milvus_lite", reason="milvus-lite is not installed: pip install -e '.[test]'")
    embedder = FakeEmbedder()
    settings = built(tmp_path_factory.mktemp(f"access-{request.param}"), cache_dir, embedder, request.param)
    settings = replace(
        settings,
        api_token=TOKEN,
        admin_token=ADMIN,
        read_tokens={HR_TOKEN: frozenset({"hr"})},
        trusted_user_header="X-User",
        trusted_groups_header="X-Groups",
    )
    with ThreadedServer(settings, Engine(settings, embedder=embedder, generator=None).load()) as server:
        yield server.url


PUBLIC = {"Authorization": f"Bearer {TOKEN}"}
HR = {"Authorization": f"Bearer {HR_TOKEN}"}


def ask(url, headers, **body):
    r = httpx.post(f"{url}/api/ask", json={"k": 10, **body}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r


def sources(data: dict) -> set[str]:
    return {p["source"] for key in ("passages", "related", "citations") for p in data[key]}


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_public_never_sees_a_restricted_document(site, question):
    data = ask(site, PUBLIC, question=question).json()
    assert not leaks(shown(data)), data
    assert sources(data) <= set(PUBLIC_DOCS)
    streamed = events_of(ask(site, PUBLIC, question=question, stream=True).text)
    assert streamed and all(not leaks(shown(event)) for event in streamed)


def test_each_user_reads_their_groups(site):
    hr = ask(site, HR, question=QUESTIONS[0]).json()
    assert "hr/salary.md" in sources(hr)
    assert "finance/budget.md" not in sources(hr)
    proxied = {"X-User": "kim", "X-Groups": "finance, sales"}  # from 127.0.0.1, a trusted proxy by default
    finance = ask(site, {**PUBLIC, **proxied}, question=QUESTIONS[1]).json()
    assert "finance/budget.md" in sources(finance)
    assert "hr/salary.md" not in sources(finance)
    admin = ask(site, {"Authorization": f"Bearer {ADMIN}"}, question=QUESTIONS[0]).json()
    assert "hr/salary.md" in sources(admin)


def test_a_groups_header_sent_twice_counts_for_nothing(site):
    twice = [("Authorization", f"Bearer {TOKEN}"), ("X-Groups", "hr"), ("X-Groups", "hr")]
    r = httpx.post(f"{site}/api/ask", json={"question": QUESTIONS[0], "k": 10}, headers=twice, timeout=60)
    assert r.status_code == 200 and not leaks(shown(r.json()))


def test_a_follow_up_carries_no_restricted_words(site):
    # The earlier question is the user's own; what the restricted document says never joins it.
    r = ask(site, PUBLIC, question="그럼 성과급은?", history=[QUESTIONS[0]])
    data = r.json()
    assert sources(data) <= set(PUBLIC_DOCS)
    assert not leaks(shown(data))


def test_health_counts_only_what_the_caller_may_read(site):
    def documents(headers):
        r = httpx.get(f"{site}/api/health", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["documents"]

    assert documents({}) == documents(PUBLIC) == 2
    assert documents(HR) == 3
    assert documents({"X-Groups": "hr,finance"}) == 4


def test_the_chat_answers_each_user_from_their_documents(site):
    from gradio_client import Client

    public = Client(site, headers={"X-User": "lee"}, verbose=False)
    hr = Client(site, headers={"X-User": "kim", "X-Groups": "hr"}, verbose=False)
    for question in QUESTIONS[:3]:
        reply = public.predict(question, "ko", api_name="/ask")
        assert not leaks(reply, question), reply
    assert "블루문" in hr.predict(QUESTIONS[0], "ko", api_name="/ask") or "연봉" in hr.predict(
        "연봉 규정", "ko", api_name="/ask"
    )


def test_the_chat_page_shows_no_restricted_example_or_count(site):
    r = httpx.get(f"{site}/config", headers={"X-User": "lee"}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert not leaks(r.text)


# --- the property: a reader's reply is the reply of an index of only their documents -------------------

DOCS = {
    "a.md": "# 출장 규정\n\n해외 출장비는 하루 20만 원입니다. 출장 보고서는 일주일 안에 냅니다.\n",
    "b.md": "# 보안 수칙\n\n비밀번호는 90일마다 바꿉니다. 노트북은 퇴근할 때 잠급니다.\n",
    "c.md": "# 카멜롯 프로젝트\n\n카멜롯 프로젝트의 출시일은 10월 3일입니다. 담당자는 한결입니다.\n",
    "d.md": "# 복지 제도\n\n건강검진은 매년 회사가 지원합니다. 출장 중 사고도 보험이 됩니다.\n",
    "e.md": "# Remote work\n\nStaff may work from home two days a week. Laptops are locked at night.\n",
}
GROUPS = ("hr", "fin", "eng")
ASKED = (
    "해외 출장비는 얼마인가요?",
    "카멜롯 프로젝트 출시일은?",
    "비밀번호는 언제 바꾸나요?",
    "How often may staff work from home?",
)


def comparable(data: dict) -> dict:
    out = {k: v for k, v in data.items() if k not in ("timings_ms",)}
    for key in ("passages", "related"):
        out[key] = [{**p, "score": round(p["score"], 3)} for p in out[key]]
    out["confidence"] = round(out["confidence"], 3)
    return out


@hyp_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    assignment=st.dictionaries(st.sampled_from(sorted(DOCS)), st.sets(st.sampled_from(GROUPS), min_size=1)),
    reader=st.sets(st.sampled_from((*GROUPS, "other"))),
)
def test_no_group_assignment_leaks(tmp_path_factory, cache_dir, assignment, reader):
    embedder = FakeEmbedder()
    rules = "folders = false\n[groups]\n" + "".join(f'"{d}" = {json.dumps(sorted(g))}\n' for d, g in assignment.items())
    whole = built(tmp_path_factory.mktemp("whole"), cache_dir, embedder, docs=DOCS, rules=rules)
    readable = {d: t for d, t in DOCS.items() if d not in assignment or assignment[d] & reader}
    engine = Engine(whole, embedder=embedder, generator=None)
    if not readable:  # no index can be built of nothing: the reader is refused every time
        assert health_json(engine, frozenset(reader))["documents"] == 0
        for question in ASKED:
            data = reply_json(engine.ask(question, 5, None, frozenset(reader)))
            assert data["abstained"] and not sources(data)
        return
    alone = Engine(
        built(tmp_path_factory.mktemp("alone"), cache_dir, embedder, docs=readable, rules=None),
        embedder=embedder,
        generator=None,
    )
    for question in ASKED:
        mine = reply_json(engine.ask(question, 5, None, frozenset(reader)))
        assert sources(mine) <= set(readable)
        assert comparable(mine) == comparable(reply_json(alone.ask(question, 5)))
    assert health_json(engine, frozenset(reader))["chunks"] == health_json(alone)["chunks"]
    shutil.rmtree(whole.index_dir.parent, ignore_errors=True)


def test_the_command_line_asks_as_a_reader_of_some_groups(tmp_path, cache_dir, embedder, shared_model, capsys):
    from aiqa.cli import main

    settings = built(tmp_path, cache_dir, embedder)
    ask = ["ask", "--index", str(settings.index_dir), "--json", "-k", "10", QUESTIONS[0]]

    def answer(*flags: str) -> dict:
        assert main([*ask[:-1], *flags, ask[-1]]) == 0
        return json.loads(capsys.readouterr().out)

    assert "hr/salary.md" in sources(answer())  # the operator reads every document
    assert "hr/salary.md" in sources(answer("--groups", "hr"))
    public = answer("--groups", "")
    assert sources(public) <= set(PUBLIC_DOCS) and not leaks(shown(public))
