"""From raw P(True) to a probability that means what it says, and thresholds chosen from data. Pure numpy.

Platt scaling: calibrated = sigmoid(a · logit(raw) + b), fitted by logistic regression on labelled
questions. Thresholds are read off out-of-fold calibrated probabilities (each question scored by a fit that
never saw it), so the precision promised for a threshold is not the precision on the fitting data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

_EPS = 1e-6
_L2 = 1e-2  # a little shrinkage keeps the fit finite when the two classes separate perfectly


class Calibration(BaseModel):
    """Platt scaling of the guard's raw P(True); stored under `guard.calibration` in config.yaml."""

    model_config = ConfigDict(extra="forbid")

    a: float = Field(allow_inf_nan=False)
    """Slope on logit(raw P(True))."""
    b: float = Field(allow_inf_nan=False)
    """Intercept."""
    fitted_on: str | None = None
    """Which labelled set, for the record."""
    n: int | None = None

    def apply(self, raw: float) -> float:
        return float(_sigmoid(self.a * _logit(np.asarray(raw)) + self.b))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def fit_platt(raw: Sequence[float], labels: Sequence[bool]) -> Calibration:
    """Logistic regression of the label on logit(raw), by Newton's method with light L2 on the slope."""
    x = _logit(np.asarray(raw, dtype=np.float64))
    y = np.asarray(labels, dtype=np.float64)
    if len(set(labels)) < 2:
        raise ValueError("calibration needs both answerable and unanswerable questions")
    design = np.column_stack([x, np.ones_like(x)])
    w = np.zeros(2)
    penalty = np.diag([_L2, 0.0])
    for _ in range(100):
        p = _sigmoid(design @ w)
        gradient = design.T @ (p - y) + penalty @ w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return Calibration(a=float(w[0]), b=float(w[1]), n=len(y))


def out_of_fold(raw: Sequence[float], labels: Sequence[bool], folds: int = 5, seed: int = 0) -> list[float]:
    """Each question's calibrated probability from a fit on the other folds (stratified by label)."""
    raw_a = np.asarray(raw, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
    for label in (True, False):
        members = rng.permutation(np.nonzero(y == label)[0])
        fold_of[members] = np.arange(members.size) % folds
    calibrated = np.empty(len(y))
    for fold in range(folds):
        held = fold_of == fold
        if not held.any():
            continue
        fit = fit_platt(raw_a[~held].tolist(), y[~held].tolist())
        calibrated[held] = [fit.apply(r) for r in raw_a[held]]
    return calibrated.tolist()


class ThresholdChoice(BaseModel):
    answer_threshold: float
    clarify_threshold: float
    expected_precision: float | None
    """Answered precision at answer_threshold, on out-of-fold probabilities."""
    expected_coverage: float
    reached_target: bool


def choose_thresholds(probs: Sequence[float], labels: Sequence[bool], target_precision: float) -> ThresholdChoice:
    """The lowest answer threshold whose answered precision reaches the target (the most coverage); the
    clarify band runs from 0.5, where answerable becomes the likelier label, up to it.

    When no threshold reaches the target, the one with the best precision is chosen and `reached_target` is
    False, so the caller can say how close it got.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    best: tuple[float, float, float] | None = None  # (precision, coverage, threshold) of the best miss
    for t in np.unique(p):  # ascending: the first threshold that reaches the target answers the most
        answered = p >= t
        precision = float(y[answered].mean())
        coverage = float((answered & y).sum() / max(y.sum(), 1))
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
