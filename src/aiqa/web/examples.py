"""The chat's example questions: set by AIQA_EXAMPLES, else read off the live index's FAQs and section titles."""

from __future__ import annotations

from aiqa.engine import Engine
from aiqa.errors import AiqaError
from aiqa.text.korean import is_korean, topic_particle
from aiqa.text.layout import FAQ_QUESTION, short_section

# A FAQ question this long at most is shown as an example question in the chat.
EXAMPLE_CHARS = 40


def _lower_first(words: str) -> str:
    """A title as words inside a sentence: "Working hours" -> "working hours", but "IT and security" stays."""
    return words[0].lower() + words[1:] if words[1:2].islower() else words


def examples(engine: Engine, n: int = 4) -> list[str]:
    """Example questions for the chat: AIQA_EXAMPLES; else the questions of the documents' FAQs,
    then one about each of the first short section titles ("현재 기술 수준" -> "현재 기술 수준은?",
    "Working hours" -> "Tell me about working hours")."""
    if engine.settings.examples:
        return list(engine.settings.examples[:n])
    try:
        chunks = engine.index_for(frozenset()).chunks  # the page is everyone's: only what everyone may read
    except AiqaError:
        return []
    asked: list[str] = []
    topics: list[str] = []
    titles: set[str] = set()
    for chunk in chunks:
        first = chunk.text.split("\n", 1)[0]
        mark = FAQ_QUESTION.match(first)
        question = first[mark.end() :].strip() if mark else ""
        if 4 <= len(question) <= EXAMPLE_CHARS and question not in asked:
            asked.append(question)
        topic = short_section(chunk.section.split(" > ")[-1]).replace("_", " ") if chunk.section else ""
        if chunk.kind == "title":
            titles.add(topic)  # a document's title names it; it asks nothing
        elif 2 <= len(topic) <= 20 and topic not in topics and topic not in titles:
            topics.append(topic)
    about = [f"{t}{topic_particle(t)}?" if is_korean(t) else f"Tell me about {_lower_first(t)}" for t in topics]
    return [*asked[: n - min(len(about), n // 2)], *about][:n]
