"""Fitting a probe: L2-regularised logistic regression on standardised hidden states (scikit-learn).

The strength C and the layers are chosen by cross-validation grouped by article or paragraph: questions
written about one paragraph share its words, and a split that put them on both sides would reward
recognising the paragraph instead of judging the question. Every figure reported is out of fold. Pure:
arrays in, numbers and a `Probe` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from rag_guard.evaluation.calibration_maths import fit
from rag_guard.evaluation.metrics import auroc
from rag_guard.judging.calibration import Calibration
from rag_guard.judging.probe import CALLS, Probe
from rag_guard.judging.signals import Signals, logit, sigmoid

C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)
"""Strong regularisation: a few hundred questions against 1,536 or more dimensions per layer."""
FOLDS = 5
READ_SIGNALS: tuple[str, ...] = CALLS
"""The prompt-level signals a features file holds (one per call whose states it reads), so the ones a
combination can weigh besides the probe."""
COMBINED = (*READ_SIGNALS, "probe")
"""What the shipped combination weighs: the default prompt-level signals and the probe."""

BOUNDS: tuple[float | None, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, None)
"""How far (log-odds) the probe may lower the prompt-level score: the candidates a fit chooses among, None for
no limit. 1.5 takes a verdict of 0.80 to 0.47 at most."""

Splits = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Reading:
    """What a probe reads: these calls' states, each at these layers, side by side."""

    calls: tuple[str, ...]
    layers: tuple[int, ...]

    @property
    def keys(self) -> list[tuple[str, int]]:
        return [(call, layer) for call in self.calls for layer in self.layers]

    def __str__(self) -> str:
        return f"{'+'.join(self.calls)} @ {'+'.join(map(str, self.layers))}"


@dataclass(frozen=True)
class Candidate:
    """A reading at its best strength, and how well it did out of fold."""

    reading: Reading
    c: float
    auroc: float
    oof: np.ndarray
    """Each question's probe log-odds from a fit on the folds that did not hold it."""


def grouped_splits(labels: Sequence[bool], groups: Sequence[str], folds: int = FOLDS) -> Splits:
    """Folds stratified by label, each group (article or paragraph) entirely on one side."""
    n_groups = len(set(groups))
    if n_groups < 2:
        raise ValueError(f"cross-validation needs questions from at least two groups, not {n_groups}")
    splitter = StratifiedGroupKFold(n_splits=min(folds, n_groups), shuffle=True, random_state=0)
    y = np.asarray(labels, dtype=bool)
    return [(train, test) for train, test in splitter.split(np.zeros(len(y)), y, np.asarray(groups))]


def _model(c: float) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def out_of_fold(x: np.ndarray, y: np.ndarray, splits: Splits, c: float) -> np.ndarray:
    scores = np.empty(len(y))
    for train, test in splits:
        scores[test] = _model(c).fit(x[train], y[train]).decision_function(x[test])
    return scores


def stack(states: Mapping[tuple[str, int], np.ndarray], reading: Reading) -> np.ndarray:
    """The questions' states that `reading` names, side by side: (questions, calls x layers x width)."""
    return np.hstack([np.asarray(states[key], dtype=np.float64) for key in reading.keys])


def choose(
    states: Mapping[tuple[str, int], np.ndarray],
    labels: Sequence[bool],
    splits: Splits,
    candidates: Sequence[Reading],
    strengths: Sequence[float] = C_GRID,
) -> list[Candidate]:
    """Every candidate reading at its best strength, best first."""
    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("a probe needs both answerable and unanswerable questions")
    scored = []
    for reading in candidates:
        x = stack(states, reading)
        best: Candidate | None = None
        for c in strengths:
            oof = out_of_fold(x, y, splits, c)
            auroc = float(roc_auc_score(y, oof))
            if best is None or auroc > best.auroc:
                best = Candidate(reading=reading, c=c, auroc=auroc, oof=oof)
        assert best is not None
        scored.append(best)
    return sorted(scored, key=lambda candidate: -candidate.auroc)


def combination_features(signals: Sequence[Mapping[str, float]], probe_logits: np.ndarray) -> list[dict[str, float]]:
    """The prompt-level features with the probe's, as the guard computes them (through its probability)."""
    return [{**row, "probe": logit(sigmoid(float(z)))} for row, z in zip(signals, probe_logits, strict=True)]


def combined_signals(configured: Sequence[str]) -> tuple[str, ...]:
    """What a probe fitted for a guard with these signals combines: the read ones it lists, and the probe."""
    return (*(name for name in READ_SIGNALS if name in configured), "probe")


def combine(
    signals: Sequence[Mapping[str, float]],
    probe_logits: np.ndarray,
    labels: Sequence[bool],
    splits: Splits,
    names: Sequence[str] = COMBINED,
) -> tuple[Calibration, np.ndarray]:
    """The logistic combination of the signals `names` and out-of-fold probe scores, and its own out-of-fold
    output."""
    features = combination_features(signals, probe_logits)
    y = np.asarray(labels, dtype=bool)
    held_out = np.empty(len(y))
    for train, test in splits:
        fitted = fit([features[i] for i in train], y[train].tolist(), names)
        held_out[test] = [fitted.apply(features[i]) for i in test]
    return fit(features, y.tolist(), names), held_out


@dataclass(frozen=True)
class BoundScore:
    """A bound on the probe's lowering, and the guard's held-out AUROC with it: the mean and the worst over
    the groups scored (articles or question files), since one group is too noisy a score."""

    bound: float | None
    mean: float
    worst: float


def guarded(signals: Sequence[Signals], combined: Sequence[float], bound: float | None) -> np.ndarray:
    """P(sufficient) as the guard makes it from each question's signals (the probe's among them) and its
    combination's output: capped at the prompt-level score, and lowered at most `bound` log-odds below it."""
    return np.array([s.capped(p, bound) for s, p in zip(signals, combined, strict=True)])


def choose_bound(
    signals: Sequence[Signals],
    combined: Sequence[float],
    labels: Sequence[bool],
    groups: Sequence[str],
    bounds: Sequence[float | None] = BOUNDS,
) -> list[BoundScore]:
    """Every bound scored by the mean over `groups` of the guard's AUROC on out-of-fold `combined`, best first;
    a tie goes to the tighter bound (it can do less harm where the probe was not fitted)."""
    by_group: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        by_group.setdefault(group, []).append(i)
    scored = []
    for bound in bounds:
        p = guarded(signals, combined, bound)
        found = [auroc(p[rows].tolist(), [labels[i] for i in rows]) for rows in by_group.values()]
        values = [a for a in found if a is not None]
        if values:
            scored.append(BoundScore(bound, float(np.mean(values)), min(values)))
    order = {bound: i for i, bound in enumerate(bounds)}
    return sorted(scored, key=lambda s: (-round(s.mean, 4), order[s.bound]))


def fit_probe(
    states: Mapping[tuple[str, int], np.ndarray],
    labels: Sequence[bool],
    chosen: Candidate,
    combination: Calibration,
    *,
    model_sha256: str,
    model_name: str,
    prompt_sha256: str,
    fitted_on: list[str],
    combination_auroc: float | None,
    max_lowering: float | None = None,
) -> Probe:
    """The final probe: `chosen`'s reading and strength, fitted on every question."""
    y = np.asarray(labels, dtype=bool)
    model = _model(chosen.c).fit(stack(states, chosen.reading), y)
    scaler: StandardScaler = model.named_steps["standardscaler"]
    regression: LogisticRegression = model.named_steps["logisticregression"]
    return Probe(
        layers=list(chosen.reading.layers),
        calls=list(chosen.reading.calls),
        mean=scaler.mean_,
        scale=scaler.scale_,
        weights=regression.coef_[0],
        bias=float(regression.intercept_[0]),
        model_sha256=model_sha256,
        model_name=model_name,
        prompt_sha256=prompt_sha256,
        c=chosen.c,
        fitted_on=fitted_on,
        n=len(y),
        heldout_auroc=chosen.auroc,
        combination=combination,
        combination_heldout_auroc=combination_auroc,
        max_lowering=max_lowering,
    )
