"""The clarifying message: what the passages do not answer, the closest thing they do say, and what to do.

A small model asked to summarise what the passages cover invents facts (measured: "the oven should be set
to 400 degrees", "100 lighthouses in France"), so the message is assembled here and the model writes only
the part of the question the passages leave unanswered, copied from the question (`CLARIFY_INSTRUCTION`).
Every fact in the message is then a sentence quoted from a passage, with its label and source; a reply
that is not made of the question's words is not used. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.documents import Document

from rag_guard.judging.injection import sanitise
from rag_guard.judging.words import key_words, stem, stems

MAX_QUOTE_WORDS = 40
MAX_PART_WORDS = 25
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BLOCK_END = re.compile(r"\n\s*\n")
_MARKDOWN_LEAD = re.compile(r"^[>*\-\s]+")


def unanswered_part(question: str, reply: str) -> str:
    """The model's copy of the unanswered part, if it is made of the question's words; else the question.

    The check keeps the message free of anything but the user's own words: a reply that states something
    ("Voyager 1 visited Saturn") has words the question lacks and is dropped.
    """
    part = reply.strip().splitlines()[0].strip(" \"'\u201c\u201d") if reply.strip() else ""
    words = key_words(part)
    asked = stems(question)
    if not words or len(part.split()) > MAX_PART_WORDS or sum(stem(w) in asked for w in words) < 0.8 * len(words):
        return question.strip()
    return part if part.endswith("?") else part.rstrip(".") + "?"


def closest_sentence(question: str, documents: Sequence[Document]) -> tuple[int, str, str] | None:
    """The passage sentence that shares the most content words with the question: (label, source, text).

    Ties go to the higher-ranked passage; None when no sentence shares a word.
    """
    asked = stems(question)
    best: tuple[int, int, str, str] | None = None
    for label, doc in enumerate(documents, start=1):
        text, _ = sanitise(doc.page_content)
        for raw in _sentences(text):
            sentence = _MARKDOWN_LEAD.sub("", raw).strip()
            shared = len(stems(sentence) & asked)
            if shared and (best is None or shared > best[0]):
                best = (shared, label, str(doc.metadata.get("source", "unknown")), sentence)
    if best is None:
        return None
    _, label, source, sentence = best
    words = sentence.split()
    return label, source, " ".join(words[:MAX_QUOTE_WORDS]) + (" \u2026" if len(words) > MAX_QUOTE_WORDS else "")


def _sentences(text: str) -> list[str]:
    """Sentences across wrapped lines, without markdown headings (a heading has no full stop to end it)."""
    found = []
    for block in _BLOCK_END.split(text):
        lines = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
        found += _SENTENCE_END.split(" ".join(" ".join(lines).split()))
    return [sentence for sentence in found if sentence]


def clarifying_message(question: str, documents: Sequence[Document], reply: str) -> str:
    """What the passages do not answer, the closest sentence they hold (with its source), and a request."""
    part = unanswered_part(question, reply)
    lines = [f'The documents I found do not answer this part of your question: "{part}"']
    if (closest := closest_sentence(question, documents)) is not None:
        label, source, sentence = closest
        lines.append(f'The closest they come is [{label}] ({source}): "{sentence}"')
    lines.append("Could you narrow the question, or point me to a document that covers it?")
    return "\n".join(lines)
