"""The prompt: an instruction, the numbered top passages trimmed to a token budget, and the question.

Sizes are counted with tiktoken (cl100k_base), the tokenizer aiqa ships; a server's own tokenizer
differs, so the budget keeps a margin (PROMPT_MARGIN) besides the room reserved for the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiqa.records import Chunk
from aiqa.text.tokens import count_tokens, encoding

# Share of the context window left unused: other tokenizers cut Korean into up to this much more.
PROMPT_MARGIN = 0.2
# A passage trimmed below this many tokens says too little to be worth its number.
MIN_PASSAGE_TOKENS = 40

INSTRUCTION = (
    "You answer questions about a company's documents using only the numbered passages given. "
    "Write a short answer of one to three sentences in {language}. End every sentence with the number of "
    "the passage that states it, in square brackets, like [1] or [2]. Copy numbers, dates and names exactly "
    "as the passage writes them. Do not add anything the passages do not say."
)
LANGUAGE = {"ko": "Korean", "en": "English"}


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    passages: tuple[Chunk, ...]  # passage n of the prompt is passages[n - 1]
    texts: tuple[str, ...]  # what the model saw of each (a long one may be cut)
    tokens: int


def passage_text(chunk: Chunk) -> str:
    """What the model reads of a passage: a table row as "header: value" pairs, anything else as written.
    No file or section label: a small model copies labels into its answer."""
    if chunk.cells:
        return "; ".join(f"{h}: {v}" for h, v in chunk.cells)
    return chunk.text


def build_prompt(question: str, chunks: list[Chunk], language: str, context_tokens: int, answer_tokens: int) -> Prompt:
    """Number the passages (best first) and keep as many as fit `context_tokens` with room for the answer."""
    system = INSTRUCTION.format(language=LANGUAGE.get(language, "Korean"))
    asked = f"Question: {question}"
    budget = int(context_tokens * (1 - PROMPT_MARGIN)) - answer_tokens - count_tokens(system) - count_tokens(asked)
    kept: list[Chunk] = []
    texts: list[str] = []
    for chunk in chunks:
        head = f"[{len(kept) + 1}] "
        room = budget - count_tokens(head) - 2
        if room < MIN_PASSAGE_TOKENS:
            break
        text = _trim(passage_text(chunk), room)
        kept.append(chunk)
        texts.append(text)
        budget -= count_tokens(head + text) + 2
    body = "\n\n".join(f"[{n}] {t}" for n, t in enumerate(texts, 1))
    user = f"Passages:\n\n{body}\n\n{asked}"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return Prompt(messages, tuple(kept), tuple(texts), count_tokens(system) + count_tokens(user))


def _trim(text: str, tokens: int) -> str:
    """The text cut to `tokens` tokens, at the last line or sentence end before the cut where there is one."""
    ids = encoding().encode_ordinary(text)
    if len(ids) <= tokens:
        return text
    cut = encoding().decode(ids[:tokens]).rstrip("\ufffd")  # a character split by the cut
    end = max(cut.rfind("\n"), cut.rfind(". "))
    return cut[: end + 1].rstrip() if end > len(cut) // 2 else cut.rstrip()
