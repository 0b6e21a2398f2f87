"""Software documentation as teams keep it: a README with a changelog under version headings, and an
operations manual in plain text whose commands are indented after a shell prompt instead of fenced."""

from __future__ import annotations

import pytest

from aiqa.answer.candidates import Question
from aiqa.chunk import chunk_document
from aiqa.contract import ask_json
from aiqa.records import Document
from aiqa.text.cues import ASKS_LIST, ASKS_NUMBER, ASKS_VERSION, asked_unit
from aiqa.text.korean import analyse
from aiqa.text.layout import code_kinds, line_kind, split_lines

from .conftest import engine_over, report_index

README = """# tilemaker

지도 타일을 미리 만들어 두는 사내 도구입니다.

## 설치

```bash
pip install tilemaker
```

## 옵션

| 옵션 | 기본값 | 설명 |
|---|---|---|
| `--retries N` | `2` | 그리기에 실패한 타일을 다시 그리는 횟수 (최대 5) |
| `--workers N` | `4` | 동시에 그리는 작업 수 |

## 문제 해결

### `ERROR: cache locked`

다른 작업이 캐시를 쓰는 중입니다. 캐시 잠금 파일을 손으로
지우면 안 됩니다. 두 작업이 같은 타일을 함께 써서 캐시가 깨지기 때문입니다.

### `WARN: token in config`

설정 파일에 지도 서버 토큰을 직접 적지 마세요. 설정 파일은 저장소에 함께 올라가
팀 밖의 사람도 열어 볼 수 있습니다. 토큰은 환경 변수 `TILE_TOKEN`으로 넘깁니다.

### T409: 타일 크기 초과

그리려는 타일 한 장이 4,096×4,096 픽셀을 넘으면 작업이 멈춥니다. `--zoom`을 한 단계 낮추거나
`--split 2`로 나눠 그립니다.

## 변경 이력

### v2.1.0 (2030-03-02)
- WebP 출력 지원
- `--zoom` 범위 검사 추가

### v2.0.0 (2029-11-20)
- 설정 파일을 TOML로 변경
- 파이썬 3.9 지원 중단
"""

MANUAL = """타일 서버 운영 안내

1. 점검

  매일 아침 점검용 서버에 접속하여 아래 명령으로 전체 상태를 확인한다.

      $ tilectl health --all

  결과에 FAIL이 하나라도 있으면 담당자에게 알린다.

2. 캐시 비우기

  캐시가 가득 차면 오래된 타일부터 지운다.

      $ tilectl cache purge --older-than 30d

  지운 뒤에는 반드시 용량을 다시 확인한다.
"""


def test_an_indented_command_after_a_prompt_is_code_and_heads_nothing():
    lines = split_lines(MANUAL)
    kinds = dict(
        zip((x.text.strip() for x in lines), code_kinds(lines, [line_kind(x.text) for x in lines]), strict=True)
    )
    assert kinds["$ tilectl health --all"] == "code"
    assert kinds["$ tilectl cache purge --older-than 30d"] == "code"
    assert kinds["결과에 FAIL이 하나라도 있으면 담당자에게 알린다."] != "code"
    chunks = chunk_document(Document("m.txt", MANUAL, "x"), lambda s: len(s.split()) + 1)
    after = next(c for c in chunks if c.text.strip().startswith("결과에 FAIL"))
    assert "tilectl" not in after.section  # the command is no heading of the sentence after it
    assert any(c.kind == "code" and "tilectl health --all" in c.text for c in chunks)
    # an item indented under another is a nested item, though it names an option
    nested = split_lines("- 강제로 덮어쓰기\n\n    - Use --force to overwrite tiles\n")
    assert code_kinds(nested, [line_kind(x.text) for x in nested])[2] == "bullet"


def test_a_version_question_is_no_list_question():
    assert ASKS_VERSION.search("WebP는 몇 버전부터 돼?")
    assert ASKS_VERSION.search("Which version added WebP output?")
    assert not ASKS_LIST.search("WebP는 몇 버전부터 돼?")  # "버전부터" holds no 전부
    assert ASKS_LIST.search("설정을 전부 알려줘")


def test_a_noun_of_how_many_with_a_bare_number_answers_a_count():
    # "횟수" is the number of times, "장수" the number of sheets: the bare number after one counts them
    assert asked_unit("몇 번까지 다시 해?").search("다시 그리는 횟수 (최대 5)")
    assert asked_unit("한 번에 몇 장 뽑아?").search("출력 장수: 2")
    assert not asked_unit("몇 명이 써?").search("다시 그리는 횟수 (최대 5)")  # times are no people
    assert not ASKS_NUMBER.search("몇몇 팀에서 쓰는 도구 이름이 뭐야?")  # "몇몇" is "some"
    assert ASKS_NUMBER.search("몇 팀이 써?")


@pytest.fixture(scope="module")
def devdocs(tmp_path_factory, cache_dir, embedder):
    folder = tmp_path_factory.mktemp("devdocs-corpus")
    (folder / "tilemaker_README.md").write_text(README, encoding="utf-8")
    (folder / "타일서버_운영안내.txt").write_text(MANUAL, encoding="utf-8")
    index = report_index(tmp_path_factory.mktemp("devdocs"), cache_dir, embedder, folder)
    return engine_over(index, embedder).load()


def test_which_version_brought_a_change_is_answered_with_its_version_heading(devdocs):
    result = ask_json(devdocs, "tilemaker에서 WebP는 몇 버전부터 돼?")
    assert not result["abstained"], result["answer"]
    assert result["answer"].startswith("v2.1.0"), result["answer"]
    assert "WebP 출력 지원" in result["citations"][0]["quote"]


def test_an_option_that_counts_in_its_description_answers_how_many(devdocs):
    result = ask_json(devdocs, "한 타일을 몇 번까지 다시 그릴 수 있어?")
    assert not result["abstained"], result["answer"]
    assert "--retries" in result["citations"][0]["quote"], result["answer"]


def test_a_how_question_gets_the_command_the_sentence_announces(devdocs):
    result = ask_json(devdocs, "아침마다 서버 상태 한꺼번에 보려면 뭘 쳐야 돼?")
    assert not result["abstained"], result["answer"]
    assert any("tilectl health --all" in c["quote"] for c in result["citations"]), result["answer"]


def test_a_why_question_gets_the_sentence_after_a_bare_rule_though_no_word_says_it_is_the_reason(devdocs):
    result = ask_json(devdocs, "설정 파일에 토큰을 써 두면 왜 안 되는 거야?")
    assert not result["abstained"], result["answer"]
    quote = " ".join(c["quote"] for c in result["citations"])
    assert "팀 밖의 사람도 열어 볼 수 있습니다" in quote, result["answer"]


def test_a_why_question_gets_the_reason_after_the_sentence_that_only_restates_it(devdocs):
    result = ask_json(devdocs, "잠금 파일 손으로 지우면 왜 안 돼?")
    assert not result["abstained"], result["answer"]
    quote = " ".join(c["quote"] for c in result["citations"])
    assert "캐시가 깨지기 때문입니다" in quote, result["answer"]


def test_a_heading_in_a_units_own_text_labels_its_sentences_and_a_why_question_naming_it_gets_its_section(
    tmp_path, cache_dir, fake_embedder
):
    """The unit under "### T409: 타일 크기 초과" holds its heading in its text; the code is a label of its two
    sentences, so they cover the question, and asked why, the answer is the section in its order."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tilemaker_README.md").write_text(README, encoding="utf-8")
    pipeline = engine_over(report_index(tmp_path / "built", cache_dir, fake_embedder, folder), fake_embedder).pipeline()
    composer = pipeline.composer
    unit = next(i for i, c in enumerate(composer.chunks) if c.text.startswith("### T409"))
    statements, labels = composer.statements.of(unit)
    assert [s.text[:8] for s in statements] == ["그리려는 타일 ", "`--zoom`"]
    assert "t409" in labels
    asked = Question.read(analyse("T409 오류는 왜 나?"), composer.stats)
    hits = pipeline.retriever.search(asked.analysis, k=5)
    best = next(c for c in composer.ranked(asked, hits) if c.hit.id == unit)
    assert best.features["coverage_context"] > 0
    span = composer.span(asked, best, [best])
    assert span is not None and [c.quote[:8] for c in span] == ["그리려는 타일 ", "`--zoom`"], span
