"""The `aiqa` command as a user runs it: real subprocesses, real model, real index."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import DEV_SET, REPO

HEAVY = ("torch", "sentence_transformers", "faiss", "gradio", "transformers", "kiwipiepy")


def run(*args: str, settings=None, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    if settings is not None:
        full_env.update(AIQA_CORPUS=str(settings.corpus_dir), AIQA_INDEX=str(settings.index_dir))
    return subprocess.run(
        [sys.executable, "-m", "aiqa.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
    )


def test_import_aiqa_stays_light():
    code = f"import sys, aiqa, aiqa.cli, aiqa.config; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing aiqa loaded {out}"


def test_ask_json_contract(report_settings):
    result = run("ask", "중국의 대표 AI 모델은?", "--json", "-k", "5", settings=report_settings)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"question", "answer", "abstained", "citations", "passages", "timings_ms"}
    assert data["question"] == "중국의 대표 AI 모델은?" and data["abstained"] is False
    assert len(data["passages"]) == 5
    assert [p["rank"] for p in data["passages"]] == [1, 2, 3, 4, 5]
    for p in data["passages"]:
        assert set(p) >= {"rank", "source", "section", "locator", "text", "score"}
        assert p["source"] == "us-china-ai-race.txt" and p["locator"]
    assert "ERNIE 4.0" in data["passages"][0]["text"]
    assert data["citations"] and all(
        {"n", "source", "section", "locator", "quote"} <= set(c) for c in data["citations"]
    )
    assert set(data["timings_ms"]) == {"retrieve", "answer"}


def test_ask_reads_questions_from_stdin_and_answers_english(report_settings):
    questions = "CANN\nWhich software frameworks does the US lead with?\n\n"
    result = run("ask", "-", "--json", settings=report_settings, stdin=questions)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["question"] for d in lines] == ["CANN", "Which software frameworks does the US lead with?"]
    assert "PyTorch" in lines[1]["answer"] and lines[1]["answer"].startswith("From the documents")


def test_ask_with_history_file(report_settings, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps(["미국의 AI 반도체는?"], ensure_ascii=False), encoding="utf-8")
    result = run("ask", "중국은?", "--history", str(history), "--json", settings=report_settings)
    data = json.loads(result.stdout)
    assert "Huawei Ascend 910B" in data["answer"]
    assert data["answer"].index("중국:") < data["answer"].index("미국:")  # the asked-about column leads


def test_plain_output_lists_sources(report_settings):
    result = run("ask", "중국은 해외 인재를 어떻게 유치하나?", settings=report_settings)
    assert result.returncode == 0
    assert "천인계획" in result.stdout and "[1] us-china-ai-race.txt" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (("ask", "무엇이든"), "aiqa index", 1),
        (("ask", "질문", "--bogus"), "unrecognized arguments: --bogus", 2),
        (("index",), "no readable document", 1),
        (("eval", "missing.jsonl"), "", 1),
    ],
)
def test_errors_are_one_clear_line(tmp_path, args, needle, code):
    (tmp_path / "corpus").mkdir(exist_ok=True)
    (tmp_path / "corpus" / "empty.txt").write_text("", encoding="utf-8")
    result = run(*args, env={"AIQA_CORPUS": str(tmp_path / "corpus"), "AIQA_INDEX": str(tmp_path / "index")})
    assert result.returncode == code
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("aiqa"), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_eval_on_the_dev_set_meets_the_bar(report_settings):
    result = run("eval", str(DEV_SET), "--json", settings=report_settings)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recall@5"] == 1.0
    assert report["recall@1"] >= 0.9
    assert report["answer_accuracy"] >= 0.9
    assert report["abstention_accuracy"] == 1.0
    assert report["false_abstentions"] == 0
    assert report["verbatim_quotes"] == 1.0
    assert report["latency_ms"]["p50"] > 0


def test_readme_names_two_setup_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/run.sh" in readme and "bash scripts/test.sh" in readme
