"""Labelled questions written by the model from a collection's own chunks, for `calibrate --synthetic`.

The thresholds that suit one kind of document do not suit every other (docs/studies/thresholds.md), and
a user seldom has labelled questions about their own. So the model writes them: for each sampled chunk, a
question the chunk answers, with the answer copied from it (kept only when the chunk holds the answer's
words), and a near miss on the same topic that the chunk leaves open. A near miss the guard would not
refuse is then put to the whole collection through an extraction prompt unlike the guard's, "answer in a
few words taken from the passages", and dropped when it draws an answer found word for word in a retrieved
passage: a near miss answered elsewhere would teach the thresholds that answerable questions are not. (One
the guard refuses is never answered, whatever its label, so it cannot lower the answered precision the
thresholds are chosen for; checking only the others saves a long call for each of them.) What survives is
written to a JSON Lines file of labelled questions the user can read and correct.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.retrievers import BaseRetriever

from rag_guard.evaluation.questions import LabelledQuestion
from rag_guard.judging.prompts import ABSTAIN_WORD, EXTRACT_INSTRUCTION, build_messages
from rag_guard.text.injection import sanitise
from rag_guard.text.words import key_words

WRITE_TOKENS = 80
"""The three lines take 40-60 tokens; a reply that runs on past them is cut."""
CHECK_TOKENS = 16
MIN_CHUNK_CHARS = 120
"""Shorter chunks (a heading, a caption) seldom hold a fact to ask about."""

WRITE_INSTRUCTION = (
    "You write quiz questions about a passage. For the passage you are given, write:\n"
    "ANSWERED: a question the passage answers\n"
    "ANSWER: its answer, a few words copied exactly from the passage\n"
    "NOT ANSWERED: a question about the same thing that sounds answerable but that the passage does not "
    "answer, because it asks for a fact the passage never states (a date, number, name, place or reason)\n"
    "Each question names what it is about, as a reader would ask it without the passage at hand. Reply with "
    "those three lines only."
)
EXAMPLE = (
    "The Halden bridge opened in 1931 and carries two lanes over the river Vass.",
    "ANSWERED: When did the Halden bridge open?\nANSWER: 1931\nNOT ANSWERED: Who designed the Halden bridge?",
)
"""A made-up passage and its reply, shown as an earlier turn: a small model keeps the form it has seen."""
_LINE = re.compile(r"^\W*(ANSWERED|ANSWER|NOT ANSWERED)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_REFERS_TO_TEXT = re.compile(r"\b(?:the|this) (?:passage|text|article|document)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Written:
    """What the model wrote for one chunk, once checked against it."""

    answered: str | None
    answer: str | None
    near_miss: str | None


def write_prompt(passage: Document) -> list[BaseMessage]:
    text, _ = sanitise(passage.page_content.strip())
    return [
        SystemMessage(content=WRITE_INSTRUCTION),
        HumanMessage(content=f"Passage:\n{EXAMPLE[0]}"),
        AIMessage(content=EXAMPLE[1]),
        HumanMessage(content=f"Passage:\n{text}"),
    ]


def read_written(reply: str, passage: str) -> Written:
    """The two questions in the model's reply: the answered one only when the passage holds its answer; the
    near miss only when it is a different question."""
    lines = {label.upper(): value for label, value in _LINE.findall(reply)}
    answered, answer, near = lines.get("ANSWERED"), lines.get("ANSWER"), lines.get("NOT ANSWERED")
    answered = answered if _usable(answered) else None
    answer = answer.strip(" \"'.") if answer else None
    if answered is None or not answer or not _found_in(answer, passage):
        answered = answer = None
    if not _usable(near) or (answered and _plain(near or "") == _plain(answered)):
        near = None
    return Written(answered=answered, answer=answer, near_miss=near)


def _usable(question: str | None) -> bool:
    """A question that stands alone: it ends in a question mark, names something, and does not lean on "the
    passage" it was written from."""
    if not question or not question.rstrip().endswith("?"):
        return False
    return len(key_words(question)) >= 2 and not _REFERS_TO_TEXT.search(question)


def _found_in(answer: str, passage: str) -> bool:
    """The answer's content words are the passage's: copied, or closely enough that a reader finds it there."""
    wanted = set(key_words(answer))
    return bool(wanted) and len(wanted & set(key_words(passage))) >= 0.8 * len(wanted)


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def answered_by(reply: str, passages: Sequence[Document]) -> bool:
    """An extraction reply that is an answer found word for word in one of the passages (not the abstain
    word, not words of its own)."""
    words = _plain(reply)
    if not words or words.startswith(ABSTAIN_WORD):
        return False
    return any(words in _plain(doc.page_content) for doc in passages)


def spread_sample(chunks: Sequence[Document], n: int, seed: int = 0) -> list[Document]:
    """`n` chunks long enough to ask about, taken in turn from each file so that one long file does not
    supply every question."""
    by_file: dict[str, list[Document]] = {}
    for chunk in chunks:
        if len(chunk.page_content.strip()) >= MIN_CHUNK_CHARS:
            by_file.setdefault(str(chunk.metadata.get("source", "")), []).append(chunk)
    rng = random.Random(seed)
    piles = [rng.sample(pile, len(pile)) for _, pile in sorted(by_file.items())]
    picked: list[Document] = []
    while len(picked) < n and any(piles):
        for pile in piles:
            if pile and len(picked) < n:
                picked.append(pile.pop())
    return picked


Progress = Callable[[int, int], None]


def write_questions(
    chunks: Sequence[Document],
    writer: BaseChatModel,
    options: Callable[[int], dict[str, Any]],
    progress: Progress | None = None,
) -> list[LabelledQuestion]:
    """Labelled questions for `chunks`, as the model wrote them (see the module's note); `options(tokens)`:
    the writer's call options for that many tokens."""
    questions: list[LabelledQuestion] = []
    for done, chunk in enumerate(chunks, start=1):
        reply = writer.invoke(write_prompt(chunk), stop=["\n\n"], **options(WRITE_TOKENS))
        written = read_written(str(reply.content), chunk.page_content)
        source = str(chunk.metadata.get("source", ""))
        if written.answered:
            questions.append(
                LabelledQuestion(
                    question=written.answered,
                    answerable=True,
                    answer=written.answer,
                    kind="answerable",
                    group=source,
                    chunk=chunk.id,
                )
            )
        if written.near_miss:
            questions.append(
                LabelledQuestion(
                    question=written.near_miss, answerable=False, kind="near_miss", group=source, chunk=chunk.id
                )
            )
        if progress:
            progress(done, len(chunks))
    return questions


def answered_elsewhere(
    near_miss: str, writer: BaseChatModel, retriever: BaseRetriever, options: Callable[[int], dict[str, Any]]
) -> bool:
    """Whether what the collection retrieves for a near miss answers it after all: asked to answer in words
    taken from those passages, the model quotes one of them."""
    found = retriever.invoke(near_miss)
    reply = writer.invoke(build_messages(near_miss, found, EXTRACT_INSTRUCTION), **options(CHECK_TOKENS))
    return answered_by(str(reply.content), found)
