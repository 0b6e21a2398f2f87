"""Export the converted embedding model to ONNX, in float32 and int8, once, into the cache.

The folder `aiqa.embedders.convert` writes is traced with torch.onnx, with mean pooling and L2
normalization inside the graph; onnxruntime's transformer optimizer fuses attention, GELU and
the layer norms, and its dynamic quantization makes the int8 file. The word embeddings (250k
pieces x 384, four fifths of the model's weights) stay out of the graph: they are written beside it
as a float16 array (WORDS) from which the embedder reads each piece's row (onnx.WordTable), so a
process holds only the rows its texts use, and no export step carries the table through its graph.
The result sits in the cache beside the converted model (onnx/ beside models/), in a folder named
after it and EXPORT_VERSION, built under a temporary name and renamed into place as the conversion
is. torch, onnx and onnxruntime are imported only for a build, which runs in a child process
(ensure_onnx), and each of its steps (trace, optimize, quantize) in a child of that one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiqa.embedders.convert import SOURCE_SHA256, build_once, ensure_model, marker_holds, model_dir, write_marker
from aiqa.embedders.pieces import NORMALIZER, PIECES, write_model
from aiqa.errors import ModelUnavailable

# Bump when the exported files change, so existing caches are rebuilt.
# 3: the graph also puts out each token's L2-normalized last-layer state ("tokens").
# 4: the tokenizer as a SentencePiece model and a normalizer (aiqa.embedders.pieces).
# 5: the word embeddings beside the graph (WORDS); the graph reads their rows ("inputs_embeds").
EXPORT_VERSION = 5
FLOAT32 = "model.onnx"
INT8 = "model-int8.onnx"
TOKENIZER = "tokenizer.json"
WORDS = "words.npy"
STEPS = ("trace", "optimize", "quantize")
INSTALL_HINT = "pip install onnxruntime==1.32.0 onnx==1.23.2"
log = logging.getLogger(__name__)


def onnx_dir(cache_dir: Path) -> Path:
    """Return where the ONNX files live under `cache_dir`, whether built yet or not."""
    # A folder of its own beside models/: the converted model's folder keeps no siblings.
    return Path(cache_dir) / "onnx" / f"{model_dir(cache_dir).name}-v{EXPORT_VERSION}"


def _expected() -> dict[str, Any]:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelUnavailable(f"onnxruntime is not installed ({exc}): run `{INSTALL_HINT}`") from exc
    # Files made by one onnxruntime's optimizer are rebuilt for another: fused operators change.
    return {"export": EXPORT_VERSION, "source_sha256": SOURCE_SHA256, "onnxruntime": onnxruntime.__version__}


def ensure_onnx(cache_dir: Path) -> Path:
    """Return the folder of the ONNX files, exporting the converted model first if needed.

    The export runs in a child process: it needs torch and the whole model in float32 (gigabytes
    at its peak), which the process that then serves with onnxruntime should never hold.
    """
    target = onnx_dir(cache_dir)
    if marker_holds(target, _expected()):
        return target
    src = Path(__file__).resolve().parents[2]  # the folder aiqa itself is imported from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "aiqa.embedders.export", str(cache_dir)]
    done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    said = [line for line in done.stderr.splitlines() if line.strip()]
    for line in said if done.returncode == 0 else said[-20:]:
        log.warning("%s", line)  # the child's "preparing ... (first run)" and its warnings
    if done.returncode != 0 or not marker_holds(target, _expected()):
        why = said[-1] if said else f"exit status {done.returncode}"
        raise ModelUnavailable(
            f"exporting the ONNX embedding model into {target} failed ({why}): run again, "
            "or set AIQA_ENCODER=torch to run the model without onnxruntime"
        )
    return target


def export_here(cache_dir: Path) -> Path:
    """Export in this process (what the child of ensure_onnx runs); return the folder."""
    expected = _expected()
    target = onnx_dir(cache_dir)
    if marker_holds(target, expected):
        return target
    source = ensure_model(cache_dir)
    build_once(
        target,
        lambda folder: marker_holds(folder, expected),
        lambda folder: _export(source, folder, expected),
        "ONNX embedding model",
        "about a minute",
    )
    drop_older_exports(target)
    return target


def drop_older_exports(target: Path) -> list[Path]:
    """Remove the exports of the same model by an earlier EXPORT_VERSION (each is ~320 MB); return them."""
    stem = target.name.rsplit("-v", 1)[0]
    older = [p for p in target.parent.glob(f"{stem}-v*") if p != target and p.is_dir()]
    for folder in older:
        shutil.rmtree(folder, ignore_errors=True)  # a running process keeps the files it loaded
    return older


def _export(source: Path, folder: Path, marker: dict[str, Any]) -> None:
    # Each step in a process of its own: one process for all three held 6.2 GB at its peak (the
    # memory of one step is not given back to the next), one each holds what the largest needs.
    for step in STEPS:
        done = subprocess.run(
            [sys.executable, "-m", "aiqa.embedders.export", "--step", step, str(source), str(folder)],
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if done.returncode != 0:
            raise ModelUnavailable(f"the ONNX export's {step} step failed (exit status {done.returncode})")
    shutil.copyfile(source / TOKENIZER, folder / TOKENIZER)
    write_model(source / TOKENIZER, folder / PIECES, folder / NORMALIZER)
    write_marker(folder, marker)


def run_step(step: str, source: Path, folder: Path) -> None:
    """One step of the export, in this process: trace (torch), optimize, quantize (onnxruntime)."""
    traced = folder / "traced.onnx"
    if step == "trace":
        _trace(source, traced)
    elif step == "optimize":
        from onnxruntime.transformers.optimizer import optimize_model

        config = json.loads((source / "config.json").read_text(encoding="utf-8"))
        with _quiet():
            # opt_level 0: the Python fusions only. Run first, onnxruntime's own pass held 4.1 GB
            # instead of 2.9 here, and changed nothing the session does not redo when it loads the
            # file (the int8 vectors agree within cosine 0.99999).
            fused = optimize_model(
                str(traced),
                model_type="bert",
                num_heads=config["num_attention_heads"],
                hidden_size=config["hidden_size"],
                opt_level=0,
            )
            fused.save_model_to_file(str(folder / FLOAT32))
        traced.unlink()
    elif step == "quantize":
        _quantize(folder / FLOAT32, folder / INT8)
    else:
        raise ValueError(f"no export step {step!r}: one of {', '.join(STEPS)}")


def _trace(source: Path, out: Path) -> None:
    """Trace the model with pooling and normalization into `out`, and write its word embeddings beside it.

    The graph reads each token's word embedding ("inputs_embeds", looked up in WORDS by the embedder)
    and adds the positions and the layer norm itself. It has two outputs: the sentence vector
    ("embedding") and every token's normalized state ("tokens", for aiqa.answer.align).
    """
    import numpy as np
    import torch
    from transformers import AutoModel

    from aiqa.embedders.base import no_loading_bars

    with no_loading_bars():
        # Eager attention traces to the MatMul/Softmax pattern the optimizer fuses into one operator.
        encoder = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        """The sentence-transformers pipeline of the folder: encoder, masked mean, L2 norm."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1), torch.nn.functional.normalize(hidden, dim=-1)

    words = encoder.get_input_embeddings().weight.detach().numpy()
    np.save(out.parent / WORDS, words.astype(np.float16))
    mask = torch.ones((2, 16), dtype=torch.long)
    example = torch.from_numpy(words[np.ones((2, 16), dtype=np.int64)])
    dynamic = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about shape checks that hold for every input here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled(),
            (example, mask),
            str(out),
            input_names=["inputs_embeds", "attention_mask"],
            output_names=["embedding", "tokens"],
            dynamic_axes={
                "inputs_embeds": dynamic,
                "attention_mask": dynamic,
                "embedding": {0: "batch"},
                "tokens": dynamic,
            },
            opset_version=17,
            dynamo=False,  # the graph exporter needs onnxscript, and traces this encoder no better
        )


def _quantize(source: Path, out: Path) -> None:
    """Quantize the weights to 8 bits per output channel, activations at run time, except the
    feed-forward output layers.

    Their inputs (GELU outputs) have outliers that 8-bit activations flatten: quantized too, they
    take the vectors to cosine 0.98 of float32 on some texts; kept in float32 (28 MB more), the
    rest stays above 0.997 on the calibration chunks. 7-bit weights (reduce_range) avoid the
    overflow of AVX2's 8-bit multiply-add.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    feed_forward_out = _feed_forward_out(source)  # the graph read for this is freed before quantizing
    with _quiet():
        quantize_dynamic(
            str(source),
            str(out),
            weight_type=QuantType.QUInt8,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=feed_forward_out,
            # The fused operators carry no type information for the quantizer to read.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _feed_forward_out(source: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(source)).graph
    return [
        n.name for n in graph.node if n.op_type == "MatMul" and "/output/dense/" in n.name and "attention" not in n.name
    ]


@contextmanager
def _quiet() -> Iterator[None]:
    """Hold back the optimizer's and quantizer's advice, logged on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


if __name__ == "__main__":
    try:
        if sys.argv[1] == "--step":
            run_step(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        else:
            export_here(Path(sys.argv[1]))
    except ModelUnavailable as exc:
        sys.exit(f"aiqa: {exc}")
