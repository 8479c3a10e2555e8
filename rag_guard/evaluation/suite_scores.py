"""The gate's score across question sets and styles: each set, each style's mean and worst, and whether one
reading beats another on a style's mean beyond resampling noise. Pure: reports in, figures out.

One article is too noisy a score (AUROC moves by 0.1 between SQuAD articles), so a reading is judged by its
mean over many sets of a style and by its worst set. Every reading is computed from the same run: each row
keeps the signals its `p_sufficient` was made of.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from rag_guard.evaluation.metrics import auroc
from rag_guard.judging.signals import Signals

RESAMPLES = 2000

Reading = Callable[[Signals | None, float | None], float]


def _verdict(signals: Signals | None, p: float | None) -> float:
    return signals.verdict if signals is not None else 0.0


def _verdict_and_answer_start(signals: Signals | None, p: float | None) -> float:
    if signals is None:
        return 0.0
    return Signals(verdict=signals.verdict, extract=signals.extract).combined()


def _configured(signals: Signals | None, p: float | None) -> float:
    return p if p is not None else 0.0


READINGS: dict[str, Reading] = {
    "verdict": _verdict,
    "verdict + answer start": _verdict_and_answer_start,
    "configured": _configured,
}
"""The scores compared: the verdict token alone, the verdict with the answer start (no probe), and the
`p_sufficient` the run's configuration produced (the shipped default, probe included, when run with it).
A question without a probability scores 0 (it was refused)."""


class ScoredRow(BaseModel):
    """What the suite needs of one eval row."""

    answerable: bool
    p_sufficient: float | None
    signals: Signals | None = None


class SetScore(BaseModel):
    name: str
    style: str
    n: int
    answerable: int
    auroc: dict[str, float | None]
    """By reading."""


class StyleScore(BaseModel):
    style: str
    sets: int
    mean: dict[str, float | None]
    worst: dict[str, float | None]
    gain: tuple[float, float, float] | None = None
    """The configured reading's mean AUROC minus verdict + answer start's: the observed gain and its 95 %
    interval over resampled questions (each set resampled on its own)."""


def readings(rows: Sequence[ScoredRow]) -> dict[str, list[float]]:
    return {name: [read(row.signals, row.p_sufficient) for row in rows] for name, read in READINGS.items()}


def set_score(name: str, style: str, rows: Sequence[ScoredRow]) -> SetScore:
    labels = [row.answerable for row in rows]
    return SetScore(
        name=name,
        style=style,
        n=len(rows),
        answerable=sum(labels),
        auroc={reading: auroc(scores, labels) for reading, scores in readings(rows).items()},
    )


def style_scores(scored: Sequence[SetScore], rows: Mapping[str, Sequence[ScoredRow]]) -> list[StyleScore]:
    """Per style: the mean and the worst AUROC of each reading over its sets (`scored`), and the configured
    reading's gain over verdict + answer start on the mean, with its paired bootstrap over the sets' `rows`."""
    styles: dict[str, list[SetScore]] = {}
    for score in scored:
        styles.setdefault(score.style, []).append(score)
    summaries = []
    for style, sets in sorted(styles.items()):
        mean, worst = {}, {}
        for reading in READINGS:
            values = [s.auroc[reading] for s in sets if s.auroc[reading] is not None]
            mean[reading] = float(np.mean(values)) if values else None
            worst[reading] = min(values) if values else None
        gain = mean_gain_interval([rows[s.name] for s in sets])
        summaries.append(StyleScore(style=style, sets=len(sets), mean=mean, worst=worst, gain=gain))
    return summaries


def mean_gain_interval(
    groups: Sequence[Sequence[ScoredRow]], better: str = "configured", base: str = "verdict + answer start"
) -> tuple[float, float, float] | None:
    """(observed, low, high): the mean over sets of `better`'s AUROC minus `base`'s, and its 95 % interval
    when every set's questions are resampled with replacement (the pairing within a question kept)."""
    prepared = []
    for rows in groups:
        labels = np.array([row.answerable for row in rows])
        if labels.all() or not labels.any():
            continue
        scored = readings(rows)
        prepared.append((labels, np.array(scored[better]), np.array(scored[base])))
    if not prepared:
        return None

    def gain(picks: list[np.ndarray] | None) -> float:
        diffs = []
        for i, (labels, a, b) in enumerate(prepared):
            pick = picks[i] if picks is not None else np.arange(len(labels))
            y = labels[pick].tolist()
            if all(y) or not any(y):
                continue
            diffs.append((auroc(a[pick].tolist(), y) or 0.0) - (auroc(b[pick].tolist(), y) or 0.0))
        return float(np.mean(diffs)) if diffs else 0.0

    rng = np.random.default_rng(0)
    resampled = [
        gain([rng.integers(0, len(labels), len(labels)) for labels, _, _ in prepared]) for _ in range(RESAMPLES)
    ]
    low, high = np.percentile(resampled, [2.5, 97.5])
    return gain(None), float(low), float(high)
