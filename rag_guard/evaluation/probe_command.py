"""`rag-guard fit-probe`: hidden states read on labelled questions (or kept by an earlier reading), the best
reading chosen by grouped cross-validation, the probe fitted and combined with the configured signals, how
far it may lower the prompt-level score chosen, and its held-out scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from rag_guard.config import Settings
from rag_guard.errors import CorpusError
from rag_guard.evaluation.evaluate import Progress
from rag_guard.evaluation.labelled import default_layers, file_label
from rag_guard.evaluation.metrics import auroc, stratified_sample
from rag_guard.evaluation.probe_maths import (
    FOLDS,
    BoundScore,
    Candidate,
    Reading,
    choose,
    choose_bound,
    combination_features,
    combine,
    combined_signals,
    fit_probe,
    grouped_splits,
    guarded,
)
from rag_guard.evaluation.probe_states import FeatureRow, complete, features_of, read_features, require_embedded
from rag_guard.evaluation.questions import load_questions
from rag_guard.factory import model_identity
from rag_guard.judging import Calibration, Probe
from rag_guard.judging.probe import CALLS
from rag_guard.judging.signals import Signals, sigmoid

SplitBy = Literal["group", "source"]
"""What a fold keeps together: the article or paragraph a question is about (`group`), or its whole questions
file or suite set (`source`: leave one set out, e.g. one SQuAD article)."""


@dataclass(frozen=True)
class FileScore:
    """One questions file's (or set's) AUROCs: the configured signals without the probe, the probe, their
    combination and the guard's score (combination capped and bounded); out of fold when fitted on, else from
    the final probe."""

    label: str
    n: int
    without_probe: float | None
    probe: float | None
    combined: float | None
    guard: float | None
    fitted: bool = True


@dataclass(frozen=True)
class ProbeFitRun:
    probe: Probe
    n: int
    folds: int
    split_by: SplitBy
    scored: list[Candidate]
    """Every candidate reading, best first."""
    combination: Calibration
    bounds: list[BoundScore]
    """Every bound on the probe's lowering, best first."""
    per_file: list[FileScore]
    scores: list[tuple[FeatureRow, float]]
    """Each question with the guard's score: out of fold for the fitted sets, from the final probe for the
    held-out ones (what a study across sets and styles compares, `bench/probe_styles.py`)."""


def fit_probe_on(
    settings: Settings,
    questions: list[Path],
    calls: list[tuple[str, ...]] | None = None,
    layer_sets: list[tuple[int, ...]] | None = None,
    corpus: Path | None = None,
    features: Path | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> ProbeFitRun:
    """Each of `calls` (default: the one-token calls the configured signals make) at each of `layer_sets`
    (default: 60 % of the judge's depth) is a candidate reading; `features` keeps the states read (and skips
    questions already in it); `limit` samples each file. Folds keep each article or paragraph together."""
    require_embedded(settings)
    candidates = _candidates(settings, calls, layer_sets)
    asked = []
    for path in questions:
        labelled = load_questions(path)
        if limit is not None:
            labelled = stratified_sample(labelled, [q.answerable for q in labelled], limit)
        asked += [(file_label(path), q) for q in labelled]
    wanted = sorted({layer for candidate in candidates for layer in candidate.layers})
    rows = read_features(settings, asked, corpus, wanted, features, progress)
    return _fit(settings, rows, candidates, "group", [])


def fit_probe_on_features(
    settings: Settings,
    features: Path,
    sources: Sequence[str] = (),
    held_out: Sequence[str] = (),
    calls: list[tuple[str, ...]] | None = None,
    layer_sets: list[tuple[int, ...]] | None = None,
    split_by: SplitBy = "source",
) -> ProbeFitRun:
    """A probe fitted on the states a reading kept (`eval --features`, `eval-suite --features`), nothing judged:
    on the rows whose set is one of `sources` (a name or its prefix: `squad2-fit` takes every article; all
    rows not held out when none), and scored, not fitted, on those of `held_out`."""
    require_embedded(settings)
    candidates = _candidates(settings, calls, layer_sets)
    if not features.is_file():
        raise CorpusError(f"Features file {features} not found: write one with `eval --features` or `eval-suite`.")
    kept = list(complete(features_of(features, settings), {key for c in candidates for key in c.keys}).values())
    scored = [row for row in kept if _named(row.source, held_out)]
    fitted = [row for row in kept if not _named(row.source, held_out) and (not sources or _named(row.source, sources))]
    if not fitted:
        found = sorted({row.source for row in kept})
        raise CorpusError(
            f"No row of {features} holds every state the candidates read in a set named {list(sources)}"
            f" (sets with them: {found[:8]}): check --source, --layers and --calls against the reading."
        )
    return _fit(settings, fitted, candidates, split_by, scored)


def _named(source: str, names: Sequence[str]) -> bool:
    return any(source == name or source.startswith(f"{name}/") for name in names)


def _candidates(
    settings: Settings, calls: list[tuple[str, ...]] | None, layer_sets: list[tuple[int, ...]] | None
) -> list[Reading]:
    layer_sets = layer_sets or [tuple(default_layers(settings))]
    made = tuple(call for call in CALLS if call == "verdict" or call in settings.guard.signals)
    return [Reading(read, layers) for read in calls or [made] for layers in layer_sets]


def _fit(
    settings: Settings,
    rows: list[FeatureRow],
    candidates: list[Reading],
    split_by: SplitBy,
    held_out: list[FeatureRow],
) -> ProbeFitRun:
    labels = [row.answerable for row in rows]
    if min(labels.count(True), labels.count(False)) < 5:
        raise CorpusError(
            f"A probe needs at least 5 answerable and 5 unanswerable questions with a verdict (have "
            f"{labels.count(True)} and {labels.count(False)})."
        )
    groups = [row.group if split_by == "group" else row.source for row in rows]
    sources = [row.source for row in rows]
    splits = grouped_splits(labels, groups, len(set(groups)) if split_by == "source" else FOLDS)
    keys = {key for candidate in candidates for key in candidate.keys}
    states = {key: np.stack([row.states[key] for row in rows]) for key in keys}
    scored = choose(states, labels, splits, candidates)
    best = scored[0]
    # combined as the guard will combine them: the configured signals that were read, and the probe
    names = combined_signals(settings.guard.signals)
    signals = [_measured(row, names) for row in rows]
    combination, combined = combine([s.features() for s in signals], best.oof, labels, splits, names)
    with_probe = _with_probe(signals, best.oof)
    bounds = choose_bound(with_probe, combined.tolist(), labels, sources)
    sha, name = model_identity(settings.judge.path, settings.judge.preset)
    probe = fit_probe(
        states,
        labels,
        best,
        combination,
        model_sha256=sha,
        model_name=name,
        prompt_sha256=settings.guard.prompt_fingerprint,
        fitted_on=[f"{label} ({sources.count(label)})" for label in dict.fromkeys(sources)],
        combination_auroc=auroc(combined.tolist(), labels),
        max_lowering=bounds[0].bound,
    )
    final = guarded(with_probe, combined.tolist(), probe.max_lowering)
    per_file = _per_source(rows, signals, best.oof, combined, final, fitted=True)
    scores = list(zip(rows, final.tolist(), strict=True))
    if held_out:
        z = np.array([probe.logit(row.by_call) for row in held_out])
        measured = [_measured(row, names) for row in held_out]
        features = combination_features([m.features() for m in measured], z)
        applied = np.array([combination.apply(f) for f in features])
        shown = guarded(_with_probe(measured, z), applied.tolist(), probe.max_lowering)
        per_file += _per_source(held_out, measured, z, applied, shown, False)
        scores += list(zip(held_out, shown.tolist(), strict=True))
    folds = len(splits)
    return ProbeFitRun(probe, len(rows), folds, split_by, scored, combination, bounds, per_file, scores)


def _measured(row: FeatureRow, names: Sequence[str]) -> Signals:
    """The row's signals as a guard measuring `names` has them: no answer start unless it asks for one."""
    return row.signals if "extract" in names else Signals(verdict=row.verdict)


def _with_probe(signals: list[Signals], logits: np.ndarray) -> list[Signals]:
    return [s.model_copy(update={"probe": sigmoid(float(z))}) for s, z in zip(signals, logits, strict=True)]


def _per_source(
    rows: list[FeatureRow],
    measured: list[Signals],
    probe: np.ndarray,
    combined: np.ndarray,
    final: np.ndarray,
    fitted: bool,
) -> list[FileScore]:
    scores = []
    for label in dict.fromkeys(row.source for row in rows):
        mine = [i for i, row in enumerate(rows) if row.source == label]
        y = [rows[i].answerable for i in mine]
        without = [measured[i].combined() for i in mine]
        figures = (auroc(without, y), *(auroc(a[mine].tolist(), y) for a in (probe, combined, final)))
        scores.append(FileScore(label, len(mine), *figures, fitted=fitted))
    return scores
