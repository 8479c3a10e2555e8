"""Fitting a calibration and choosing thresholds from labelled data. Pure numpy.

On hand-labelled questions, thresholds are read off out-of-fold probabilities (each question scored by a fit
that never saw it), so the precision promised for a threshold is not the precision on the fitting data. On a
few dozen written questions, the precision is read from the fit's own probabilities instead (`expected`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from rag_guard.judging.calibration import Calibration, Features

_L2 = 1e-2  # a little shrinkage keeps the fit finite when the two classes separate perfectly


def fit(features: Sequence[Features], labels: Sequence[bool], signals: Sequence[str]) -> Calibration:
    """Logistic regression of the label on the named features, by Newton's method with light L2."""
    if len(set(labels)) < 2:
        raise ValueError("calibration needs both answerable and unanswerable questions")
    x = np.array([[row[name] for name in signals] for row in features], dtype=np.float64)
    design = np.column_stack([x, np.ones(len(x))])
    y = np.asarray(labels, dtype=np.float64)
    w = np.zeros(design.shape[1])
    penalty = np.diag([_L2] * len(signals) + [0.0])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (p - y) + penalty @ w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    weights = {name: float(value) for name, value in zip(signals, w[:-1], strict=True)}
    return Calibration(weights=weights, bias=float(w[-1]), n=len(y))  # type: ignore[arg-type]


def fold_of(labels: Sequence[bool], folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each question's fold, stratified by label."""
    y = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    assigned = np.empty(len(y), dtype=int)
    for label in (True, False):
        members = rng.permutation(np.nonzero(y == label)[0])
        assigned[members] = np.arange(members.size) % folds
    return assigned


def out_of_fold(
    features: Sequence[Features], labels: Sequence[bool], signals: Sequence[str], folds: int = 5, seed: int = 0
) -> list[float]:
    """Each question's calibrated probability from a fit on the other folds."""
    y = np.asarray(labels, dtype=bool)
    assigned = fold_of(labels, folds, seed)
    calibrated = np.empty(len(y))
    for fold in range(folds):
        held = assigned == fold
        if not held.any():
            continue
        fitted = fit([features[i] for i in np.nonzero(~held)[0]], y[~held].tolist(), signals)
        calibrated[held] = [fitted.apply(features[i]) for i in np.nonzero(held)[0]]
    return calibrated.tolist()


class ThresholdChoice(BaseModel):
    answer_threshold: float
    clarify_threshold: float
    expected_precision: float | None
    """Answered precision at answer_threshold, on out-of-fold probabilities."""
    expected_coverage: float
    reached_target: bool


def choose_thresholds(
    probs: Sequence[float], labels: Sequence[bool], target_precision: float, *, expected: bool = False
) -> ThresholdChoice:
    """The lowest answer threshold whose answered precision reaches the target (the most coverage); the
    clarify band runs from 0.5, where answerable becomes the likelier label, up to it.

    Precision and coverage are counted from the labels, or with `expected` taken from the probabilities
    (the mean probability of what a threshold answers): counted on a few dozen questions, precision moves in
    steps of 1/n, so the threshold lands just above an unanswerable question and jumps as the target moves;
    read from the probabilities on written questions, the precision promised held on labelled questions
    (docs/studies/thresholds.md).

    When no threshold reaches the target, the one with the best precision is chosen and `reached_target` is
    False, so the caller can say how close it got.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    weight = p if expected else y.astype(np.float64)  # how answerable each question counts as
    best: tuple[float, float, float] | None = None  # (precision, coverage, threshold) of the best miss
    for t in np.unique(p):  # ascending: the first threshold that reaches the target answers the most
        answered = p >= t
        precision = float(weight[answered].mean())
        coverage = float(weight[answered].sum() / max(weight.sum(), 1e-12))
        if precision >= target_precision:
            return _choice(float(t), precision, coverage, reached=True)
        if best is None or precision > best[0]:
            best = (precision, coverage, float(t))
    if best is None:
        raise ValueError("no questions to choose thresholds from")
    return _choice(best[2], best[0], best[1], reached=False)


def _choice(threshold: float, precision: float, coverage: float, *, reached: bool) -> ThresholdChoice:
    threshold = math.floor(threshold * 1000) / 1000  # round down so the chosen question stays answered
    return ThresholdChoice(
        answer_threshold=threshold,
        clarify_threshold=min(0.5, threshold),
        expected_precision=precision,
        expected_coverage=coverage,
        reached_target=reached,
    )
