"""Quote-first answers: the few words the answer-start call writes, found word for word in a passage. Pure.

The answer-start call asks for "the answer in a few words taken from the passages". Run on for those few
words, its reply is either a span of one passage (then the answer is that span, cited, with the passage's
sentence that holds it quoted: nothing in it is the model's own wording) or not (the model paraphrased or
invented; the pipeline then writes a free answer, held to the grounding check).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from rag_guard.judging.logprobs import (
    LogprobError,
    TokenLogprob,
    joint_logprob,
    min_content_probability,
    parse_logprobs,
)
from rag_guard.judging.prompts import ABSTAIN_WORD
from rag_guard.text.injection import sanitise
from rag_guard.text.words import excerpt, key_words, sentences, stems

QUOTE_TOKENS = 16
"""Tokens the answer-start call runs on for: "a few words"."""
_EDGES = " \t\n\"'\u201c\u201d\u2018\u2019.,;:!?()[]*-"
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")
_MARKS = re.compile(r"[^\w\s]")


class Quote(BaseModel):
    """A span of one passage that answers the question, and the passage's sentence that holds it."""

    span: str
    label: int
    source: str
    sentence: str
    echoes: bool = False
    """The span is made of the question's own words ("oven spring" for "What is oven spring?"): it names what
    was asked about, so the answer is the sentence alone."""
    min_token_p: float | None = None
    """The lowest probability among the span's tokens that hold a letter or digit; None without logprobs."""
    joint_logprob: float | None = None
    """The log of the span's whole probability; None without logprobs."""

    def answer(self) -> str:
        """The span, its citation, and the sentence quoted (`words.excerpt`); a span that only repeats the
        question is left out, and the sentence stands alone as the answer."""
        quoted = excerpt(self.sentence)
        return f'"{quoted}" [{self.label}]' if self.echoes else f'{self.span} [{self.label}]: "{quoted}"'


def find_quote(reply: str, documents: Sequence[Document], question: str = "") -> Quote | None:
    """The reply's first line as a span of the highest-ranked passage that holds it word for word (case,
    punctuation and hyphenation aside); None for an abstention, an empty reply or a span no passage holds.

    A span made of the question's own words ("classes" for "Complexity classes are classified into what?")
    names what was asked about, not the answer: the quote says so (`echoes`), and only its sentence is shown.

    Where the passage holds the span in several sentences, the one quoted is the one whose neighbourhood
    (itself and the sentences either side) shares most words with the question: "the Sun" in a passage on
    tides is quoted from the sentence next to "spring tides" when that is what was asked.
    """
    span = reply.strip().splitlines()[0].strip(_EDGES) if reply.strip() else ""
    wanted = _compared(span)
    if not wanted or wanted == ABSTAIN_WORD or wanted.startswith(f"{ABSTAIN_WORD} "):
        return None
    asked = stems(question)
    for label, doc in enumerate(documents, start=1):
        text, _ = sanitise(doc.page_content)
        found = sentences(text)
        holding = [i for i, sentence in enumerate(found) if f" {wanted} " in f" {_compared(sentence)} "]
        if holding:
            best = max(holding, key=lambda i: (len(asked & stems(" ".join(found[max(i - 1, 0) : i + 2]))), -i))
            return Quote(
                span=span,
                label=label,
                source=str(doc.metadata.get("source", "unknown")),
                sentence=found[best],
                echoes=echoes(span, question),
            )
    return None


def echoes(span: str, question: str) -> bool:
    """Every content word of the span is a word of the question (plurals aside)."""
    said = key_words(span)
    asked = set().union(*(_forms(word) for word in key_words(question)))
    return bool(said) and all(_forms(word) & asked for word in said)


def _forms(word: str) -> set[str]:
    """The word, and what it would be without a plural ending ("classes": "classe", "class"). Not
    `words.stem`: its five-letter cut would take "internet" for an echo of "international"."""
    forms = {word}
    if len(word) > 3 and word.endswith("s"):
        forms |= {word[:-1], word[:-2] if word.endswith("es") else word[:-1]}
    return forms


def read_quote(reply: BaseMessage, documents: Sequence[Document], question: str = "") -> Quote | None:
    """`find_quote` on the answer-start call's reply, with the model's confidence in the span's tokens."""
    found = find_quote(reply.text, documents, question)
    if found is None:
        return None
    try:
        tokens = span_tokens(parse_logprobs(reply.response_metadata.get("logprobs")))
    except LogprobError:
        return found
    if not tokens:
        return found
    return found.model_copy(
        update={"min_token_p": min_content_probability(tokens), "joint_logprob": joint_logprob(tokens)}
    )


def span_tokens(tokens: Sequence[TokenLogprob]) -> list[TokenLogprob]:
    """The tokens of the reply's first line (the span), blank lines before it skipped: whatever the model
    wrote after the span is not quoted, so its confidence there says nothing about the span."""
    span: list[TokenLogprob] = []
    for token in tokens:
        head, newline, _ = token.token.partition("\n")
        if newline and (span or head.strip()):
            if head.strip():
                span.append(token)
            break
        if span or token.token.strip():
            span.append(token)
    return span


def _compared(text: str) -> str:
    return " ".join(_MARKS.sub("", _SEPARATORS.sub(" ", text.casefold())).split())
