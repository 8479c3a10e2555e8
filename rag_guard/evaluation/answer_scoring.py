"""How good the text behind the gate is: answers against gold answers, messages against what is missing.

Pure functions, no I/O; words are compared as `words.py` normalises them (SQuAD's normalisation), and for
`contains` a number written as a word counts as its digits ("8 seats" holds the gold "eight").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from number_parser import parse_number
from pydantic import BaseModel

from rag_guard.text.words import cites, key_words, stem, tokens


def golds(answer: str | Sequence[str]) -> list[str]:
    """A question's acceptable answers: one string, or several (any of them is right, as in SQuAD)."""
    return [answer] if isinstance(answer, str) else list(answer)


def contains(answer: str, gold: str | Sequence[str]) -> bool:
    """Every word of one acceptable gold answer appears in the answer, in any order.

    Word containment rather than substring: "Karl Drais built it in 1817" holds the gold "Karl Drais 1817",
    and "The SNP took 8 seats" the gold "eight".
    """
    said = _words(answer)
    return any(wanted <= said for wanted in map(_words, golds(gold)) if wanted)


def _words(text: str) -> set[str]:
    """The text's words, a cardinal number word as its digits ("eight": "8"; ordinals stay words)."""
    return {_digits(word) for word in tokens(text)}


def _digits(word: str) -> str:
    value = parse_number(word, language="en") if word.isalpha() else None
    return word if value is None else str(value)


def token_f1(answer: str, gold: str | Sequence[str]) -> float:
    """SQuAD's token F1, the best over the acceptable answers."""
    predicted = tokens(answer)
    best = 0.0
    for g in golds(gold):
        expected = tokens(g)
        common = sum((Counter(predicted) & Counter(expected)).values())
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def names(message: str, missing: str) -> bool:
    """The message names every key word of the labelled missing part (matched on their stems)."""
    said = {stem(word) for word in tokens(message)}
    wanted = key_words(missing)
    return bool(wanted) and all(stem(word) in said for word in wanted)


class ScoredText(BaseModel):
    """What one question's reply scored; None where it does not apply."""

    right: bool | None = None
    """An answer: it holds the gold answer (an answered unanswerable question is wrong)."""
    f1: float | None = None
    cited: bool | None = None
    names_missing: bool | None = None
    """A clarifying message for a question labelled with what the passages lack: it names it."""
    answerable: bool | None = None
    """The question's label, for an answer the gate let through."""
    unsupported: bool | None = None
    """The answer as drafted stated a number, name or quotation its passages lack (`grounding.py`)."""
    withheld: bool = False
    """The drafted answer was withheld by the checks (the user got a message); `right` scores the draft."""


def score_answer(answer: str, answerable: bool, gold: str | Sequence[str] | None) -> ScoredText:
    """An answer to a question that cannot be answered is wrong whatever it says; without a gold answer an
    answerable question's answer is not scored (right and f1 stay None)."""
    if not answerable:
        return ScoredText(right=False, f1=0.0, cited=cites(answer), answerable=False)
    if gold is None:
        return ScoredText(cited=cites(answer), answerable=True)
    return ScoredText(right=contains(answer, gold), f1=token_f1(answer, gold), cited=cites(answer), answerable=True)


class AnswerQuality(BaseModel):
    """What the user reads after the gate, over a labelled set: the figures of `rag-guard eval --answers`."""

    answers_scored: int = 0
    """Answered questions that could be scored (answerable with a gold answer, or unanswerable)."""
    answers_right: float | None = None
    """Of the scored answers, the share that is right: how much of what the guard lets through is true."""
    answer_f1_mean: float | None = None
    """Mean token F1 of the scored answers (0 for an answered unanswerable question)."""
    answers_uncited: int = 0
    """Answers that cite no passage."""
    missing_labelled: int = 0
    """Questions labelled with what the passages lack that got a clarifying message."""
    missing_named: float | None = None
    """Of those, the share whose message names it."""
    answers_right_answerable: float | None = None
    """Of the scored answers shown for answerable questions, the share that is right: the answers' own error,
    apart from the gate's (an answered unanswerable question)."""
    answers_unsupported: int = 0
    """Drafted answers that stated a number, name or quotation their passages lack, counted before the checks
    withhold them."""
    answers_unsupported_shown: int = 0
    """Of those, the ones shown all the same (the grounding check off)."""
    answers_withheld: int = 0
    """Drafted answers the checks withheld (a message was shown instead)."""
    withheld_wrong: int = 0
    """Of those, the scored drafts that were wrong: what withholding saved."""
    withheld_right: int = 0
    """Of those, the scored drafts that were right: what withholding cost."""
    coverage_after_checks: float | None = None
    """Answerable questions whose answer was shown, after the checks, over all answerable questions (the
    gate's `coverage` counts the answers it let through, before them)."""


def answer_quality(scores: Sequence[ScoredText], answerable: int | None = None) -> AnswerQuality:
    """The figures over every reply; `right`, `f1` and `cited` count only the answers shown. `answerable`:
    how many questions of the set are answerable (for `coverage_after_checks`)."""
    shown = [s for s in scores if not s.withheld]
    withheld = [s for s in scores if s.withheld]
    right = [s.right for s in shown if s.right is not None]
    right_answerable = [s.right for s in shown if s.right is not None and s.answerable]
    f1 = [s.f1 for s in shown if s.f1 is not None]
    named = [s.names_missing for s in scores if s.names_missing is not None]
    return AnswerQuality(
        answers_scored=len(right),
        answers_right=sum(right) / len(right) if right else None,
        answer_f1_mean=sum(f1) / len(f1) if f1 else None,
        answers_uncited=sum(s.cited is False for s in shown),
        missing_labelled=len(named),
        missing_named=sum(named) / len(named) if named else None,
        answers_right_answerable=sum(right_answerable) / len(right_answerable) if right_answerable else None,
        answers_unsupported=sum(bool(s.unsupported) for s in scores),
        answers_unsupported_shown=sum(bool(s.unsupported) for s in shown),
        answers_withheld=len(withheld),
        withheld_wrong=sum(s.right is False for s in withheld),
        withheld_right=sum(s.right is True for s in withheld),
        coverage_after_checks=sum(bool(s.answerable) for s in shown) / answerable if answerable else None,
    )
