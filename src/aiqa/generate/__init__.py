"""Optional answers written by the company's own LLM server, each sentence checked against its citation.

Unset AIQA_LLM_URL (the default) and aiqa stays offline and extractive. Set, the answer decision
still decides whether to answer; only then is the model asked, and only what its cited passages
hold is shown (aiqa.generate.check). Any failure of the server falls back to the extractive answer.
"""

from aiqa.generate.generator import Generated, Generator, LlmStatus, with_generated

__all__ = ["Generated", "Generator", "LlmStatus", "with_generated"]
