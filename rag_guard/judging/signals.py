"""The guard's signals for one question and the features a calibration combines. Pure: no I/O.

Each signal is a number the pipeline already has or gets for a token or two: the guard's P(True), the
probability of the first word of a short extractive answer, the reversed question's P(missing), the
retriever's best similarity, the hidden-state probe's P(answerable) read from a one-token call's own
forward pass, and, when an answer is drafted before the gate, that answer's mean token logprob and a
verification token's P(True). Probabilities enter a calibration as logits (the answer start
as a log-probability), so a logistic combination of them is a weighted vote in log-odds.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

SignalName = Literal["verdict", "extract", "missing", "retrieval", "probe", "answer", "verify"]
GateSignal = Literal["verdict", "extract", "missing", "retrieval", "probe"]
"""The signals the guard measures before any answer is generated (`guard.signals`)."""
_EPS = 1e-6

EXTRACT_WEIGHT = 0.3
"""How strongly an uncertain answer start discounts the verdict without a fitted calibration: the verdict's
odds are multiplied by P(answer start) ** EXTRACT_WEIGHT. Chosen on the development sets (the bundled
questions and a 60-question SQuAD sample) as the weight that keeps the bundled AUROC at 0.93 while gaining
most on SQuAD's near misses, then checked on SQuAD questions it was not chosen on (docs/studies/signals.md)."""


def logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class Signals(BaseModel):
    """What the guard measured for one question; None for a signal that was not asked for."""

    verdict: float
    """P(True) of the guard's one token; for a question that asks several things, the least of the whole
    question's and its parts' (`parts.py`)."""
    extract: float | None = None
    """P of the likeliest first word of a short answer quoted from the passages, declining excluded."""
    missing: float | None = None
    """P(True) of "does the question ask for anything the passages do not state?"."""
    retrieval: float | None = None
    """Cosine similarity of the best retrieved passage."""
    probe: float | None = None
    """The hidden-state probe's P(answerable), from the last-token state of the calls it reads (`probe.py`)."""
    answer: float | None = None
    """Mean token logprob of the drafted answer."""
    verify: float | None = None
    """P(True) of "does your answer hold, from the passages?", asked after the draft."""

    def features(self) -> dict[str, float]:
        """The calibration's inputs: log-odds for probabilities, the raw value otherwise."""
        values = {
            "verdict": logit(self.verdict),
            "extract": math.log(max(self.extract, _EPS)) if self.extract is not None else None,
            "missing": logit(self.missing) if self.missing is not None else None,
            "retrieval": self.retrieval,
            "probe": logit(self.probe) if self.probe is not None else None,
            "answer": self.answer,
            "verify": logit(self.verify) if self.verify is not None else None,
        }
        return {name: value for name, value in values.items() if value is not None}

    def capped(self, p: float, max_lowering: float | None = None) -> float:
        """`p` never above the prompt-level score (`combined`) when the probe was measured: the probe reads the
        state that injected passage text leaves behind, which can raise it on a question the passages do not
        answer (docs/studies/probe.md), so it may lower confidence, never raise it. With `max_lowering`, never more
        than that many log-odds below it either: a probe fitted on one style of question can be sure of itself
        on another, and the bound keeps its doubt from overruling a confident verdict (`Probe.max_lowering`)."""
        if self.probe is None:
            return p
        prompt = self.combined()
        floor = sigmoid(logit(prompt) - max_lowering) if max_lowering is not None else 0.0
        return min(max(p, floor), prompt)

    def combined(self) -> float:
        """P(sufficient) without a fitted calibration, in log-odds: the verdict, averaged with the reversed
        question's answer when there is one (a model's leaning towards the word True cancels out), its odds
        then discounted by an uncertain answer start (`EXTRACT_WEIGHT`). The retrieval signal and the probe
        need a fit (the probe's file carries its own)."""
        if self.missing is None and self.extract is None:
            return self.verdict
        z = logit(self.verdict)
        if self.missing is not None:
            z = (z - logit(self.missing)) / 2
        if self.extract is not None:
            z += EXTRACT_WEIGHT * math.log(max(self.extract, _EPS))
        return sigmoid(z)
