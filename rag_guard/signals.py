"""The guard's signals for one question and the features a calibration combines. Pure: no I/O.

Each signal is a number the pipeline already has or gets for a token or two: the guard's P(True), the
reversed question's P(missing), the retriever's best similarity, and, when an answer is drafted before the
gate, that answer's mean token logprob and a verification token's P(True). Probabilities enter a
calibration as logits, so a logistic combination of them is a weighted vote in log-odds.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

SignalName = Literal["verdict", "missing", "retrieval", "answer", "verify"]
GateSignal = Literal["verdict", "missing", "retrieval"]
"""The signals the guard measures before any answer is generated (`guard.signals`)."""
_EPS = 1e-6


def logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class Signals(BaseModel):
    """What the guard measured for one question; None for a signal that was not asked for."""

    verdict: float
    """P(True) of the guard's one token."""
    missing: float | None = None
    """P(True) of "does the question ask for anything the passages do not state?"."""
    retrieval: float | None = None
    """Cosine similarity of the best retrieved passage."""
    answer: float | None = None
    """Mean token logprob of the drafted answer."""
    verify: float | None = None
    """P(True) of "does your answer hold, from the passages?", asked after the draft."""

    def features(self) -> dict[str, float]:
        """The calibration's inputs: log-odds for probabilities, the raw value otherwise."""
        values = {
            "verdict": logit(self.verdict),
            "missing": logit(self.missing) if self.missing is not None else None,
            "retrieval": self.retrieval,
            "answer": self.answer,
            "verify": logit(self.verify) if self.verify is not None else None,
        }
        return {name: value for name, value in values.items() if value is not None}

    def debiased(self) -> float:
        """P(sufficient) without a fitted calibration: the verdict, averaged in log-odds with the reversed
        question's answer when there is one, so a model's leaning towards the word True cancels out."""
        if self.missing is None:
            return self.verdict
        return sigmoid((logit(self.verdict) - logit(self.missing)) / 2)
