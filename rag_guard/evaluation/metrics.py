"""How well P(sufficient) separates answerable from unanswerable questions. Pure functions, no I/O.

The guard fails closed, so a verdict without a probability counts as the lowest score (0.0): it refused.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from pydantic import BaseModel

from rag_guard.judging.decision import Decision

T = TypeVar("T")


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(a random answerable question outscores a random unanswerable one), ties counting half.

    None when one of the two classes is empty (the area is undefined).
    """
    pos = np.array([s for s, y in zip(scores, labels, strict=True) if y], dtype=np.float64)
    neg = np.array([s for s, y in zip(scores, labels, strict=True) if not y], dtype=np.float64)
    if not pos.size or not neg.size:
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def expected_calibration_error(probs: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float | None:
    """Mean |share answerable - mean probability| over equal-width probability bins, weighted by bin size."""
    if not probs:
        return None
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(y[inside].mean() - p[inside].mean())
    return float(error)


class Outcomes(BaseModel):
    """How many questions of one label were answered, clarified and refused."""

    answer: int = 0
    clarify: int = 0
    refuse: int = 0

    def add(self, decision: Decision) -> None:
        setattr(self, decision.value, getattr(self, decision.value) + 1)

    @property
    def total(self) -> int:
        return self.answer + self.clarify + self.refuse


class GateQuality(BaseModel):
    """What the thresholds do to a labelled set: the figures `rag-guard eval` prints."""

    n: int
    auroc: float | None
    ece: float | None
    answer_threshold: float
    clarify_threshold: float
    answerable: Outcomes
    unanswerable: Outcomes
    answered_precision: float | None
    """Of the questions answered, the share that the context can answer (None when nothing was answered)."""
    coverage: float | None
    """Of the answerable questions, the share answered."""
    unanswerable_refusal_rate: float | None
    """Of the unanswerable questions, the share refused outright."""
    unanswerable_answered_rate: float | None
    """Of the unanswerable questions, the share answered anyway: the hallucination risk that remains."""
    no_probability: int
    """Verdicts that refused without a probability (model or reply faults); scored as 0."""


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def gate_quality(
    probs: Sequence[float | None],
    labels: Sequence[bool],
    decisions: Sequence[Decision],
    answer_threshold: float,
    clarify_threshold: float,
) -> GateQuality:
    scores = [0.0 if p is None or not math.isfinite(p) else p for p in probs]
    answerable, unanswerable = Outcomes(), Outcomes()
    for label, decision in zip(labels, decisions, strict=True):
        (answerable if label else unanswerable).add(decision)
    answered = answerable.answer + unanswerable.answer
    return GateQuality(
        n=len(scores),
        auroc=auroc(scores, labels),
        ece=expected_calibration_error(scores, labels),
        answer_threshold=answer_threshold,
        clarify_threshold=clarify_threshold,
        answerable=answerable,
        unanswerable=unanswerable,
        answered_precision=_share(answerable.answer, answered),
        coverage=_share(answerable.answer, answerable.total),
        unanswerable_refusal_rate=_share(unanswerable.refuse, unanswerable.total),
        unanswerable_answered_rate=_share(unanswerable.answer, unanswerable.total),
        no_probability=sum(p is None for p in probs),
    )


def stratified_sample(items: Sequence[T], labels: Sequence[bool], n: int, seed: int = 0) -> list[T]:
    """`n` items keeping the share of each label (at least one of each when both exist), in file order."""
    if n >= len(items):
        return list(items)
    positive = [i for i, y in enumerate(labels) if y]
    negative = [i for i, y in enumerate(labels) if not y]
    take = round(n * len(positive) / len(items))
    if positive and negative:
        take = min(max(take, 1), n - 1)
    rng = random.Random(seed)
    chosen = rng.sample(positive, min(take, len(positive))) + rng.sample(negative, min(n - take, len(negative)))
    return [items[i] for i in sorted(chosen)]
