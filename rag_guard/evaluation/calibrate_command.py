"""`rag-guard calibrate`: the configured signals read on labelled questions, a calibration fitted on them, and
thresholds chosen for a target answered precision: counted on held-out folds, or on written questions read
from the fit's probabilities (`calibration_maths.choose_thresholds`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from langchain_core.documents import Document
from pydantic import BaseModel

from rag_guard.config import Settings
from rag_guard.errors import CorpusError
from rag_guard.evaluation.calibration_maths import ThresholdChoice, choose_thresholds, fit, out_of_fold
from rag_guard.evaluation.evaluate import EvalRow, Evaluator, Progress
from rag_guard.evaluation.labelled import judge_labelled
from rag_guard.evaluation.metrics import auroc, expected_calibration_error
from rag_guard.evaluation.questions import LabelledQuestion
from rag_guard.evaluation.synthetic import WITHHELD, retrieved_with_answer, spread_sample, write_questions
from rag_guard.factory import collection_retriever, load_models, open_configured_store, short_call_options
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
    expected: bool = False
    """The thresholds' precision and coverage read from the fit's probabilities, not counted held out."""


class SyntheticRun(CalibrationRun):
    """A calibration on questions the model wrote from the collection (`calibrate --synthetic`)."""

    sampled: int
    """Chunks the questions were written from."""
    questions: Path


def calibrate(
    settings: Settings,
    corpus: Path | None,
    questions: Path,
    target_precision: float,
    limit: int | None = None,
    progress: Progress | None = None,
) -> CalibrationRun:
    """Fit on the raw signals, whatever calibration is stored now, with the questions judged on `corpus` (or
    the configured collection); `CorpusError` when too few of either label."""
    raw = uncalibrated(settings)
    result = judge_labelled(raw, corpus, questions, limit, progress)
    written = any(row.kind == WITHHELD for row in result.rows)  # --synthetic's file, perhaps corrected
    return fitted_on(result.rows, list(settings.guard.signals), target_precision, questions.name, expected=written)


def calibrate_synthetic(
    settings: Settings, questions: Path, chunks: int, target_precision: float, progress: Progress | None = None
) -> SyntheticRun:
    """Questions written from `chunks` sampled chunks of the configured collection (those whose answer the
    collection retrieves, saved to `questions` before they are judged), judged on the collection as written
    and with their answers withheld, and the calibration fitted on them (`synthetic.py`)."""
    raw = uncalibrated(settings)
    store = open_configured_store(raw)
    retriever = collection_retriever(raw, store)
    held = store.get(include=["documents", "metadatas"])
    everything = [
        Document(id=chunk, page_content=text or "", metadata=dict(metadata or {}))
        for chunk, text, metadata in zip(held["ids"], held["documents"] or [], held["metadatas"] or [], strict=True)
    ]
    sampled = spread_sample(everything, chunks)
    with Evaluator(raw, collection=retriever) as evaluator:
        writer = evaluator.pipeline.answerer
        load_models(writer)
        written = write_questions(sampled, writer, partial(short_call_options, raw.model), progress)
        written = retrieved_with_answer(written, retriever)
        save_questions(questions, written)  # a run stopped while judging keeps what was written
        judged = evaluator.evaluate(None, written, progress).rows
    run = fitted_on(judged, list(settings.guard.signals), target_precision, questions.name, expected=True)
    return SyntheticRun(**run.model_dump(), sampled=len(sampled), questions=questions)


def synthetic_questions_path(settings: Settings) -> Path:
    """Where `calibrate --synthetic` keeps a collection's written questions: beside its store."""
    return settings.chroma.persist_directory.parent / f"synthetic-{settings.chroma.collection}.jsonl"


def uncalibrated(settings: Settings) -> Settings:
    raw = settings.model_copy(deep=True)  # a copy skips the check that retrieval has weights
    raw.guard = settings.guard.model_copy(update={"calibration": None})
    return raw


def fitted_on(
    rows: Sequence[EvalRow], signals: list[str], target_precision: float, name: str, *, expected: bool = False
) -> CalibrationRun:
    """The calibration fitted on judged rows, and thresholds chosen on its held-out folds, or with `expected`
    on its own probabilities: the thresholds are then in the scale of the calibration written, where five
    fits on a few dozen questions each put them in their own."""
    scored = [row for row in rows if row.signals is not None]  # faults refuse regardless
    features = [row.signals.features() for row in scored if row.signals]
    uncalibrated_p = [row.p_sufficient or 0.0 for row in scored]
    labels = [row.answerable for row in scored]
    if min(labels.count(True), labels.count(False)) < 5:
        raise CorpusError(
            f"{name} needs at least 5 answerable and 5 unanswerable questions with a probability to "
            f"calibrate on (has {labels.count(True)} and {labels.count(False)})."
        )
    held_out = out_of_fold(features, labels, signals)
    fitted = fit(features, labels, signals).model_copy(update={"fitted_on": name})
    chosen_on = [fitted.apply(question) for question in features] if expected else held_out
    return CalibrationRun(
        signals=signals,
        n=len(scored),
        fitted=fitted,
        choice=choose_thresholds(chosen_on, labels, target_precision, expected=expected),
        auroc_uncalibrated=auroc(uncalibrated_p, labels),
        auroc_calibrated=auroc(held_out, labels),
        ece_uncalibrated=expected_calibration_error(uncalibrated_p, labels),
        ece_calibrated=expected_calibration_error(held_out, labels),
        expected=expected,
    )


def save_questions(path: Path, questions: Sequence[LabelledQuestion]) -> None:
    """The questions as a labelled-questions file (JSON Lines) the user can read, correct and judge again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(q.model_dump(exclude_none=True), ensure_ascii=False) + "\n" for q in questions)
    path.write_text("".join(lines), encoding="utf-8")
