"""Words of a text as the scoring and the clarifying message compare them. Pure.

Normalisation follows SQuAD's evaluation (lower case, no punctuation, no articles, single spaces), plus
citation markers removed, so "[1]" is not read as the number 1.
"""

from __future__ import annotations

import re
import string

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BLOCK_END = re.compile(r"\n\s*\n")
_MARKDOWN_LEAD = re.compile(r"^[>*\-\s]+")
_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
QUESTION_WORD = r"(?:how|what|when|where|which|who|whom|whose|why)\b"
"""A regex for the words that open a question asking for something it does not name ("wh" questions)."""
QUESTION_OPENING = rf"(?:{QUESTION_WORD}|is|are|was|were|do|does|did|can|could|will|would|has|have|had|should)\b"
"""A regex for the words that open any question: a question word or an auxiliary ("Did ...", "Can ...")."""
QUESTION_PREPOSITION = r"(?:at|in|on|for|from|to|by|with|since|until|during)\s+"
"""A preposition a question may open with ("In what year ...", "At what time ...")."""
_TYPOGRAPHIC = "\u2018\u2019\u201c\u201d\u2013\u2014\u2026"  # curly quotes, dashes, ellipsis
_PUNCTUATION = str.maketrans("", "", string.punctuation + _TYPOGRAPHIC)
# Words that carry no content on their own ("how much did the mission cost" is about "mission" and "cost").
_FILLER = frozenset(
    """a an the of in on at to for per each and or is are was were be been do does did how what which who whom
    when where why much many it its their they this that these those there by with from as""".split()  # noqa: SIM905
)


FUNCTION_WORDS = _FILLER | frozenset(
    """about above across after against all also although am among an another any anyone anything around became
    because become becomes been before behind being below beneath beside besides between beyond both but can
    cannot could during each either else ever every few had has have having her hers herself him himself his
    however i if into it its itself just least less like many may me might mine more most must my myself near
    nearly neither no nor not now off once one ones only onto other others our ours out over own rather same
    several shall she should since so some still such than their theirs them themselves then thence therefore
    they though through throughout thus till toward towards under unless until up upon us very via we whether
    while whose will within without would yes yet you your""".split()  # noqa: SIM905
)
"""Closed-class English words (articles, pronouns, auxiliaries, prepositions, conjunctions, yes and no): they
hold no claim of their own, so the grounding check does not look for them in the passages."""


MAX_QUOTE_WORDS = 40
"""The longest passage sentence a reply quotes, in words."""


def excerpt(sentence: str) -> str:
    """`sentence` as a reply quotes it: its first `MAX_QUOTE_WORDS` words, and an ellipsis if it goes on."""
    words = sentence.split()
    return " ".join(words[:MAX_QUOTE_WORDS]) + (" \u2026" if len(words) > MAX_QUOTE_WORDS else "")


def without_citations(text: str) -> str:
    """`text` with its [n] markers blanked out, so "[1]" is not read as the number 1."""
    return _CITATION.sub(" ", text)


def normalise(text: str) -> str:
    text = without_citations(text.lower()).translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def tokens(text: str) -> list[str]:
    return normalise(text).split()


def key_words(text: str) -> list[str]:
    """The words that carry content."""
    return [word for word in tokens(text) if word not in _FILLER]


def states(text: str, answer: str) -> bool:
    """The answer's content words are the text's: copied, or closely enough that a reader finds it there."""
    wanted = set(key_words(answer))
    return bool(wanted) and len(wanted & set(key_words(text))) >= 0.8 * len(wanted)


def stem(word: str) -> str:
    """Crude, on purpose: "drones" matches "drone", "costs" "cost", "launched" "launch"."""
    return word.rstrip("s")[:5]


def stems(text: str) -> set[str]:
    return {stem(word) for word in key_words(text)}


def cites(text: str) -> bool:
    """The text cites a passage as [n]."""
    return _CITATION.search(text) is not None


def sentences(text: str) -> list[str]:
    """Sentences across wrapped lines, without markdown headings (a heading has no full stop to end it) or
    the quote and bullet marks a line begins with."""
    found = []
    for block in _BLOCK_END.split(text):
        lines = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
        found += _SENTENCE_END.split(" ".join(" ".join(lines).split()))
    return [cleaned for sentence in found if (cleaned := _MARKDOWN_LEAD.sub("", sentence).strip())]
