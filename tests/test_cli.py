"""The `aiqa` command: its logic in-process on the real model and index, and once as a real subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from aiqa.cli import main

from .conftest import REPO, REPORT, REPORT_QUESTIONS

HEAVY = ("torch", "sentence_transformers", "faiss", "gradio", "transformers", "kiwipiepy", "pymilvus", "milvus_lite")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `aiqa ARGS` in this process, as `main` runs it for the console script; capture its output."""

    def run(*args: str, settings=None, stdin: str | None = None, env: dict | None = None) -> Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        if settings is not None:
            monkeypatch.setenv("AIQA_CORPUS", str(settings.corpus_dir))
            monkeypatch.setenv("AIQA_INDEX", str(settings.index_dir))
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def test_import_aiqa_stays_light():
    code = f"import sys, aiqa, aiqa.cli, aiqa.config; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing aiqa loaded {out}"


def test_ask_as_a_user_runs_it_answers_cites_and_abstains(asking):
    """The one real-process path: `aiqa ask - --json` loads the model and index itself (started early)."""
    result = asking.result(stdin="중국은 해외 인재를 어떻게 유치하나?\n김치찌개 끓이는 법을 알려줘\n")
    assert result.returncode == 0, result.stderr
    talent, off_topic = (json.loads(line) for line in result.stdout.splitlines())
    report = " ".join(REPORT.read_text(encoding="utf-8").split())
    assert not talent["abstained"] and "천인계획" in talent["answer"]
    assert talent["citations"] and all(" ".join(c["quote"].split()) in report for c in talent["citations"])
    assert off_topic["abstained"] and off_topic["citations"] == [] and off_topic["related"]
    assert "Traceback" not in result.stderr


def test_ask_json_contract(cli, shared_model, report_settings):
    result = cli("ask", "중국의 대표 AI 모델은?", "--json", "-k", "5", settings=report_settings)
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
    assert set(data["timings_ms"]) == {
        "retrieve",
        "answer",
        "analyse",
        "embed",
        "dense",
        "keyword",
        "fuse",
        "rerank",
        "compose",
    }


def test_ask_reads_questions_from_stdin_and_answers_english(cli, shared_model, report_settings):
    questions = "CANN\nWhat AI chips does the US have?\n\n"
    result = cli("ask", "-", "--json", settings=report_settings, stdin=questions)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["question"] for d in lines] == ["CANN", "What AI chips does the US have?"]
    assert "NVIDIA" in lines[1]["answer"] and lines[1]["answer"].startswith("From the documents")


def test_ask_with_history_file(cli, shared_model, report_settings, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps(["미국의 AI 반도체는?"], ensure_ascii=False), encoding="utf-8")
    result = cli("ask", "중국은?", "--history", str(history), "--json", settings=report_settings)
    data = json.loads(result.stdout)
    assert "Huawei Ascend 910B" in data["answer"]
    assert data["answer"].index("중국:") < data["answer"].index("미국:")  # the asked-about column leads


def test_plain_output_lists_sources(cli, shared_model, report_settings):
    result = cli("ask", "중국은 해외 인재를 어떻게 유치하나?", settings=report_settings)
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
def test_errors_are_one_clear_line(cli, tmp_path, args, needle, code):
    (tmp_path / "corpus").mkdir(exist_ok=True)
    (tmp_path / "corpus" / "empty.txt").write_text("", encoding="utf-8")
    result = cli(*args, env={"AIQA_CORPUS": str(tmp_path / "corpus"), "AIQA_INDEX": str(tmp_path / "index")})
    assert result.returncode == code
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("aiqa"), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


BAD_SETTINGS = {
    "AIQA_CHUNK_TOKENS": ["abc", "0", "100000", "2.5"],
    "AIQA_MAX_FILE_MB": ["-1", "lots"],
    "AIQA_ALLOWED_ORIGINS": [
        "portal.example.com",
        "https://portal.example.com/wiki",
        "https://a.example; script-src *",
    ],
}


@pytest.mark.parametrize(
    ("command", "name", "value"),
    [
        (command, name, value)
        for name, values in BAD_SETTINGS.items()
        for value in values
        for command in ("index", "serve")
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(cli, command, name, value):
    result = cli(command, env={name: value})
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"aiqa: {name}"), result.stderr
    assert name in lines[0] and repr(value) in lines[0]


def test_the_web_app_refuses_a_bad_setting_at_start(tmp_path):
    env = {**os.environ, "AIQA_CHUNK_TOKENS": "abc"}
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "--port", "1"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == "aiqa: AIQA_CHUNK_TOKENS='abc' is not a whole number from 32 to 512: fix it, or unset it to use 256"
    )


def test_eval_on_the_bundled_question_set_meets_the_bar(cli, shared_model, report_settings):
    result = cli("eval", str(REPORT_QUESTIONS), "--json", settings=report_settings)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recall@5"] == 1.0
    assert report["recall@1"] >= 0.9
    assert report["answer_accuracy"] >= 0.9
    assert report["abstention_accuracy"] == 1.0
    # The decision's threshold refuses about 2 % of answerable calibration questions: at most one of these 20.
    assert report["false_abstentions"] <= 1
    assert report["verbatim_quotes"] == 1.0
    assert report["latency_ms"]["p50"] > 0


def test_readme_names_two_setup_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/run.sh" in readme and "bash scripts/test.sh" in readme
