"""`rag-guard calibrate`: the configured signals read on labelled questions, a calibration fitted on them, and
thresholds chosen for a target answered precision on held-out folds."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from rag_guard.config import Settings
from rag_guard.errors import CorpusError
from rag_guard.evaluation.calibration_maths import ThresholdChoice, choose_thresholds, fit, out_of_fold
from rag_guard.evaluation.evaluate import Progress
from rag_guard.evaluation.labelled import judge_labelled
from rag_guard.evaluation.metrics import auroc, expected_calibration_error
from rag_guard.judging import Calibration


class CalibrationRun(BaseModel):
    """What `calibrate` fitted and how it did held out, beside the uncalibrated score."""

    signals: list[str]
    n: int
    fitted: Calibration
    choice: ThresholdChoice
    auroc_uncalibrated: float | None
    auroc_calibrated: float | None
    ece_uncalibrated: float | None
    ece_calibrated: float | None


def calibrate(
    settings: Settings,
    corpus: Path,
    questions: Path,
    target_precision: float,
    limit: int | None = None,
    progress: Progress | None = None,
) -> CalibrationRun:
    """Fit on the raw signals, whatever calibration is stored now; `CorpusError` when too few of either label."""
    raw = settings.model_copy(deep=True)  # a copy skips the check that retrieval has weights
    raw.guard = settings.guard.model_copy(update={"calibration": None})
    result = judge_labelled(raw, corpus, questions, limit, progress)
    scored = [row for row in result.rows if row.signals is not None]  # faults refuse regardless
    features = [row.signals.features() for row in scored if row.signals]
    uncalibrated = [row.p_sufficient or 0.0 for row in scored]
    labels = [row.answerable for row in scored]
    if min(labels.count(True), labels.count(False)) < 5:
        raise CorpusError(
            f"{questions} needs at least 5 answerable and 5 unanswerable questions with a probability to "
            f"calibrate on (has {labels.count(True)} and {labels.count(False)})."
        )
    signals = list(settings.guard.signals)
    held_out = out_of_fold(features, labels, signals)
    return CalibrationRun(
        signals=signals,
        n=len(scored),
        fitted=fit(features, labels, signals).model_copy(update={"fitted_on": questions.name}),
        choice=choose_thresholds(held_out, labels, target_precision),
        auroc_uncalibrated=auroc(uncalibrated, labels),
        auroc_calibrated=auroc(held_out, labels),
        ece_uncalibrated=expected_calibration_error(uncalibrated, labels),
        ece_calibrated=expected_calibration_error(held_out, labels),
    )
