"""Labelled questions written by the model from a collection's own chunks, for `calibrate --synthetic`.

The thresholds that suit one kind of document do not suit every other (docs/studies/thresholds.md), and
a user seldom has labelled questions about their own. So the model writes them: for each sampled chunk, a
question the chunk answers, with the answer copied from it (kept only when the chunk holds the answer's
words). Each question is then labelled twice: answerable as written, and unanswerable with its answer
withheld (`LabelledQuestion.withhold`), judged on what the collection retrieves for it once every chunk
stating the answer is left out. That near miss is what a guard meets most: passages on the question's
topic that do not state what it asks. A near miss written by the model instead was often answered by its
own chunk (a 1.5B writer asked "What is a rotating light?" of a passage that says), and the labels were
only as good as a check asking the same model again.
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
from rag_guard.text.injection import sanitise
from rag_guard.text.words import key_words, states

WRITE_TOKENS = 60
"""The two lines take 20-40 tokens; a reply that runs on past them is cut."""
MIN_CHUNK_CHARS = 120
"""Shorter chunks (a heading, a caption) seldom hold a fact to ask about."""
MAX_ANSWER_WORDS = 6
"""Content words an answer may have. A question answered by a sentence ("What did Voyager 1 do?") is one
other passages answer in words of their own, so withholding the sentence does not leave it open."""
WITHHELD = "answer_withheld"
"""The kind of a written question judged with its answer left out of the passages: unanswerable."""

WRITE_INSTRUCTION = (
    "You write quiz questions about a passage. For the passage you are given, write:\n"
    "ANSWERED: a question the passage answers\n"
    "ANSWER: its answer, a few words copied exactly from the passage (a date, number, name or place)\n"
    "The question names what it is about, as a reader would ask it without the passage at hand. Reply with "
    "those two lines only."
)
EXAMPLE = (
    "The Halden bridge opened in 1931 and carries two lanes over the river Vass.",
    "ANSWERED: When did the Halden bridge open?\nANSWER: 1931",
)
"""A made-up passage and its reply, shown as an earlier turn: a small model keeps the form it has seen."""
_LINE = re.compile(r"^\W*(ANSWERED|ANSWER)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_REFERS_TO_TEXT = re.compile(r"\b(?:the (?:passage|text|article|document)|this|these|above)\b", re.IGNORECASE)
"""A question that points at what it was written from ("this process") rather than naming it."""


@dataclass(frozen=True)
class Written:
    """A question the model wrote for one chunk and its answer, checked against the chunk."""

    question: str
    answer: str


def write_prompt(passage: Document) -> list[BaseMessage]:
    text, _ = sanitise(passage.page_content.strip())
    return [
        SystemMessage(content=WRITE_INSTRUCTION),
        HumanMessage(content=f"Passage:\n{EXAMPLE[0]}"),
        AIMessage(content=EXAMPLE[1]),
        HumanMessage(content=f"Passage:\n{text}"),
    ]


def read_written(reply: str, passage: str) -> Written | None:
    """The question in the model's reply, when it stands alone and the passage holds its answer: a fact of a
    few words that the question does not already hold ("What kind of bee is the queen?" "queen")."""
    lines = {label.upper(): value for label, value in _LINE.findall(reply)}
    question, answer = lines.get("ANSWERED"), (lines.get("ANSWER") or "").strip(" \"'.")
    if question is None or not _usable(question) or not states(passage, answer):
        return None
    told = set(key_words(answer))
    if len(told) > MAX_ANSWER_WORDS or told <= set(key_words(question)):
        return None
    return Written(question=question, answer=answer)


def _usable(question: str | None) -> bool:
    """A question that stands alone: it ends in a question mark, names something, and does not lean on "the
    passage" or "this process" it was written from."""
    if not question or not question.rstrip().endswith("?"):
        return False
    return len(key_words(question)) >= 2 and not _REFERS_TO_TEXT.search(question)


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
    """Labelled questions for `chunks`, each written question twice (see the module's note); `options(tokens)`:
    the writer's call options for that many tokens."""
    questions: list[LabelledQuestion] = []
    for done, chunk in enumerate(chunks, start=1):
        reply = writer.invoke(write_prompt(chunk), stop=["\n\n"], **options(WRITE_TOKENS))
        if written := read_written(str(reply.content), chunk.page_content):
            about = {"question": written.question, "group": str(chunk.metadata.get("source", "")), "chunk": chunk.id}
            questions.append(LabelledQuestion(**about, answerable=True, answer=written.answer, kind="answerable"))
            questions.append(LabelledQuestion(**about, answerable=False, withhold=written.answer, kind=WITHHELD))
        if progress:
            progress(done, len(chunks))
    return questions


def retrieved_with_answer(questions: Sequence[LabelledQuestion], retriever: BaseRetriever) -> list[LabelledQuestion]:
    """The questions whose own answer is in what the collection retrieves for them, each with its withheld
    twin. When retrieval misses the answer, the question is unanswerable as the guard meets it and its twin
    the same passages: the pair would teach the thresholds about the retriever, not the judge."""
    found = {
        q.question
        for q in questions
        if q.answerable
        and isinstance(q.answer, str)
        and any(states(doc.page_content, q.answer) for doc in retriever.invoke(q.question))
    }
    return [q for q in questions if q.question in found]
