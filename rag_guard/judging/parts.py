"""The parts of a question that asks two things or more ("When was Voyager 1 launched, and how much did the
mission cost?"). Pure: no I/O.

The one-token verdict on such a question leans on the part the passages answer (docs/studies/answers.md), so
the guard also judges each part that stands on its own, and the question is as sufficient as its least
covered part.
"""

from __future__ import annotations

import re

from rag_guard.text.words import QUESTION_OPENING, QUESTION_PREPOSITION, QUESTION_WORD, key_words

MAX_PARTS = 4
"""Parts judged at most, each one more token: a longer list of questions is judged by its first four."""
_JOINS = re.compile(
    rf",?\s+(?:and|but|or)\s+(?=(?:{QUESTION_PREPOSITION})?{QUESTION_WORD})|(?:;|\?)\s*(?={QUESTION_OPENING})",
    re.IGNORECASE,
)
"""Where a second question begins: a conjunction followed by a question word ("..., and how much ...", "...,
and at what time ..."), or a semicolon or question mark followed by any question. A conjunction before "is",
"were" and the like mostly joins two predicates of one question ("Which family distilled brandy and were
Huguenots?"): no split there."""
_ASKING = re.compile(rf"(?:{QUESTION_PREPOSITION})?{QUESTION_OPENING}", re.IGNORECASE)
_REFERS = re.compile(r"\b(?:it|its|they|them|their|he|him|his|she|her|one|ones|that|this|these|those)\b", re.IGNORECASE)


def question_parts(question: str) -> list[str]:
    """The questions `question` asks, each ending with "?", when it asks more than one; else an empty list.

    Every part must open with a question word and carry a content word of its own: "Who built it, and
    when?" stays one question, since "when?" cannot be judged on its own.
    """
    parts = [part.strip(" ,;?") for part in _JOINS.split(question.strip())]
    if len(parts) < 2 or not all(_asks_on_its_own(part) for part in parts):
        return []
    return [part[0].upper() + part[1:] + "?" for part in parts]


def _asks_on_its_own(part: str) -> bool:
    """The part opens with a question word and carries a content word; one opened by a preposition, two ("at
    what time is high tide?", not "in which year?": that only asks more of the question before it)."""
    if not _ASKING.match(part):
        return False
    return len(key_words(part)) >= (2 if re.match(QUESTION_PREPOSITION, part, re.IGNORECASE) else 1)


def standalone_parts(question: str) -> list[str]:
    """The parts of `question` that can be judged on their own: those with no word referring back to another
    part. "What are they made of?" means nothing without "the cells of the comb": judged alone, such parts
    scored below the threshold when the passages answer them (docs/studies/answers.md). Each distinct part once, at
    most `MAX_PARTS`."""
    parts = dict.fromkeys(part for part in question_parts(question) if not _REFERS.search(part))
    return list(parts)[:MAX_PARTS]
