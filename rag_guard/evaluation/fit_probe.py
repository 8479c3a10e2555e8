"""`rag-guard fit-probe`: hidden states read on labelled questions, the best reading chosen by grouped
cross-validation, the probe fitted and combined with the configured signals, and its held-out scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_guard.config import Settings
from rag_guard.errors import CorpusError
from rag_guard.evaluation.evaluate import Progress
from rag_guard.evaluation.labelled import default_layers, file_label
from rag_guard.evaluation.metrics import auroc, stratified_sample
from rag_guard.evaluation.probe_fit import (
    Candidate,
    Reading,
    choose,
    combine,
    combined_signals,
    fit_probe,
    grouped_splits,
)
from rag_guard.evaluation.probe_states import read_features, require_embedded
from rag_guard.evaluation.questions import load_questions
from rag_guard.factory import model_identity
from rag_guard.judging import Calibration, Probe


@dataclass(frozen=True)
class FileScore:
    """One questions file's held-out AUROCs: today's prompt-level default, the probe, and their combination."""

    label: str
    n: int
    default: float | None
    probe: float | None
    combined: float | None


@dataclass(frozen=True)
class ProbeFitRun:
    probe: Probe
    n: int
    folds: int
    scored: list[Candidate]
    """Every candidate reading, best first."""
    combination: Calibration
    per_file: list[FileScore]


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
    """Each of `calls` (default: verdict+extract) at each of `layer_sets` (default: 60 % of the judge's depth)
    is a candidate reading; `features` keeps the states read (and skips questions already in it); `limit`
    samples each file."""
    require_embedded(settings)
    layer_sets = layer_sets or [tuple(default_layers(settings))]
    candidates = [Reading(read, layers) for read in calls or [("verdict", "extract")] for layers in layer_sets]
    asked = []
    for path in questions:
        labelled = load_questions(path)
        if limit is not None:
            labelled = stratified_sample(labelled, [q.answerable for q in labelled], limit)
        asked += [(file_label(path), q) for q in labelled]
    wanted = sorted({layer for candidate in candidates for layer in candidate.layers})
    rows = read_features(settings, asked, corpus, wanted, features, progress)
    labels = [row.answerable for row in rows]
    if min(labels.count(True), labels.count(False)) < 5:
        raise CorpusError(
            f"A probe needs at least 5 answerable and 5 unanswerable questions with a verdict (have "
            f"{labels.count(True)} and {labels.count(False)})."
        )
    splits = grouped_splits(labels, [row.group for row in rows])
    keys = {key for candidate in candidates for key in candidate.keys}
    states = {key: np.stack([row.states[key] for row in rows]) for key in keys}
    scored = choose(states, labels, splits, candidates)
    best = scored[0]
    signals = [row.signals.features() for row in rows]
    # combined as the guard will combine them: the configured signals that were read, and the probe
    combination, combined = combine(signals, best.oof, labels, splits, combined_signals(settings.guard.signals))
    sha, name = model_identity(settings.judge.path, settings.judge.preset)
    per_file = []
    for path in questions:
        mine = [i for i, row in enumerate(rows) if row.source == file_label(path)]
        y = [labels[i] for i in mine]
        default = [rows[i].signals.combined() for i in mine]
        per_file.append(
            FileScore(
                file_label(path),
                len(mine),
                auroc(default, y),
                auroc(best.oof[mine].tolist(), y),
                auroc(combined[mine].tolist(), y),
            )
        )
    probe = fit_probe(
        states,
        labels,
        best,
        combination,
        model_sha256=sha,
        model_name=name,
        prompt_sha256=settings.guard.prompt_fingerprint,
        fitted_on=[f"{score.label} ({score.n})" for score in per_file],
        combination_auroc=auroc(combined.tolist(), labels),
    )
    return ProbeFitRun(probe, len(rows), len(splits), scored, combination, per_file)
