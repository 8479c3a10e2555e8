"""Token log-probabilities: one typed shape for every provider, and the maths on top of it.

Pure functions only (no I/O), so the probability the guard gates on is trivially testable.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rag_guard.errors import LogprobError

TRUE_WORDS = frozenset({"true", "yes"})
FALSE_WORDS = frozenset({"false", "no"})
# Servers round; a logprob of +1e-7 is a certainty, not an error.
_ROUNDING_SLACK = 1e-6
# Tokenisers glue punctuation and blanks to words ("(True", " true", "_TRUE"): strip them before matching.
_NOT_A_WORD = string.punctuation + string.whitespace


class TokenLogprob(BaseModel):
    """One generated token, its log-probability and the alternatives the model ranked at that position."""

    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float
    bytes: list[int] | None = None
    top: list[TokenLogprob] = Field(default_factory=list)

    @property
    def probability(self) -> float:
        return math.exp(self.logprob)


def parse_logprobs(raw: Any) -> list[TokenLogprob]:
    """Turn a provider's logprobs into `TokenLogprob`s.

    Accepts the OpenAI shape `{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}`
    (ChatOpenAI, the embedded model) and Ollama's bare list of the same entries, as dicts or as the ollama
    client's pydantic `Logprob` objects.
    """
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if isinstance(raw, Mapping):
        raw = raw.get("content")
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or not raw:
        raise LogprobError("the reply carries no token logprobs")
    return [_parse_entry(entry, f"logprobs[{i}]") for i, entry in enumerate(raw)]


def _parse_entry(entry: Any, where: str, *, nested: bool = False) -> TokenLogprob:
    if isinstance(entry, BaseModel):
        entry = entry.model_dump()
    if not isinstance(entry, Mapping):
        raise LogprobError(f"{where} is a {type(entry).__name__}, not an object")
    token = entry.get("token")
    if not isinstance(token, str):
        raise LogprobError(f"{where}.token is missing or not a string")
    logprob = entry.get("logprob")
    if isinstance(logprob, bool) or not isinstance(logprob, int | float) or not logprob <= _ROUNDING_SLACK:
        raise LogprobError(f"{where}.logprob is {logprob!r}, not a number <= 0")
    raw_bytes = entry.get("bytes")
    if raw_bytes is not None and not (
        isinstance(raw_bytes, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw_bytes)
    ):
        raw_bytes = None
    top: list[TokenLogprob] = []
    if not nested:
        alternatives = entry.get("top_logprobs") or []
        if not isinstance(alternatives, Sequence) or isinstance(alternatives, str | bytes):
            raise LogprobError(f"{where}.top_logprobs is not a list")
        top = [_parse_entry(alt, f"{where}.top_logprobs[{j}]", nested=True) for j, alt in enumerate(alternatives)]
    return TokenLogprob(token=token, logprob=min(float(logprob), 0.0), bytes=raw_bytes, top=top)


def _distinct(position: TokenLogprob) -> dict[str, float]:
    """{token: logprob} for the chosen token and its alternatives, each distinct token counted once."""
    seen: dict[str, float] = {}
    for candidate in (position, *position.top):
        seen.setdefault(candidate.token, candidate.logprob)
    return seen


def verdict_word(token: str) -> bool | None:
    """True / False for a spelling of yes or no (any case, surrounding blanks or punctuation), else None."""
    word = token.strip(_NOT_A_WORD).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def p_true(position: TokenLogprob) -> float:
    """P(True) at a verdict position, normalised over the True/False spellings found there.

    Sums the linear probabilities exp(logprob) of every True-like and every False-like token among the
    chosen token and its alternatives (each distinct token counted once), then returns
    true / (true + false). Raises `LogprobError` when no such token is present.
    """
    seen = _distinct(position)
    tokens = list(seen)
    logprobs = np.array([seen[t] for t in tokens], dtype=np.float64)
    labels = [verdict_word(t) for t in tokens]
    is_true = np.array([label is True for label in labels])
    is_false = np.array([label is False for label in labels])
    if not (is_true.any() or is_false.any()):
        raise LogprobError(f"no True/False (or yes/no) token among the model's top alternatives: saw {tokens[:8]!r}")
    # Shift by the max before exponentiating: the ratio is unchanged and nothing underflows to 0/0.
    shift = logprobs[is_true | is_false].max()
    if not np.isfinite(shift):
        raise LogprobError("every True/False alternative has probability 0")
    linear = np.exp(logprobs - shift)
    true_mass = float(linear[is_true].sum())
    false_mass = float(linear[is_false].sum())
    return true_mass / (true_mass + false_mass)


def answer_start(position: TokenLogprob, abstain_word: str) -> float:
    """P of the most likely first word of an answer at a reply's first position, `abstain_word` excluded.

    Spellings of one word ("radio", " Radio") are summed, since the tokeniser splits what the model means
    by case and blanks; a token that could begin `abstain_word` ("un", "Un" for "unanswerable") counts as
    declining, and one with no word in it (a blank, a bullet) as no answer yet. The probability is absolute,
    not renormalised: when the model mostly declines, its best answer start is unlikely too. 0.0 when every
    alternative declines.
    """
    abstain = abstain_word.lower()
    words: dict[str, float] = {}
    for token, logprob in _distinct(position).items():
        word = token.strip(_NOT_A_WORD).lower()
        if word and not (len(word) >= 2 and abstain.startswith(word)):
            words[word] = words.get(word, 0.0) + math.exp(logprob)
    return min(max(words.values(), default=0.0), 1.0)


def alternatives(position: TokenLogprob) -> dict[str, float]:
    """The chosen token and its alternatives as {token: linear probability}, most likely first."""
    seen: dict[str, float] = {}
    for candidate in sorted((position, *position.top), key=lambda c: c.logprob, reverse=True):
        seen.setdefault(candidate.token, math.exp(candidate.logprob))
    return seen


def joint_logprob(tokens: Iterable[TokenLogprob]) -> float:
    """Sum of log-probabilities: the log of the whole sequence's probability."""
    return float(np.sum([t.logprob for t in tokens], dtype=np.float64))


def perplexity(tokens: Sequence[TokenLogprob]) -> float:
    """exp(-mean logprob): 1 for a fully confident sequence, larger as the model hesitates."""
    if not tokens:
        raise LogprobError("perplexity of an empty sequence is undefined")
    return float(np.exp(-np.mean([t.logprob for t in tokens], dtype=np.float64)))


def min_content_probability(tokens: Sequence[TokenLogprob]) -> float | None:
    """The lowest probability among tokens that hold a letter or digit (punctuation and spaces left out)."""
    content = [t.probability for t in tokens if any(c.isalnum() for c in t.token)]
    return min(content) if content else None
