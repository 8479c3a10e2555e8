"""A labelled questions file judged in a temporary store (`eval`, `calibrate`), with the judge's hidden states
kept for `fit-probe` when asked."""

from __future__ import annotations

from pathlib import Path

from rag_guard.config import Settings
from rag_guard.errors import CorpusError
from rag_guard.evaluation.evaluate import EvalReport, Progress, evaluate
from rag_guard.evaluation.probe_states import keep_features, require_embedded
from rag_guard.evaluation.questions import load_questions
from rag_guard.factory import build_chat_model, collection_retriever
from rag_guard.judging.probe import load_probe


def judge_labelled(
    settings: Settings,
    corpus: Path | None,
    questions: Path,
    limit: int | None,
    progress: Progress | None = None,
    *,
    answers: bool = False,
    features: Path | None = None,
    layers: list[int] | None = None,
) -> EvalReport:
    """The guard over a labelled questions file in a temporary store of `corpus` (eval, calibrate), or on the
    configured collection without one; with `features`, the judge's states at `layers` are kept there for
    `fit-probe`."""
    labelled = load_questions(questions)
    if corpus is not None and not corpus.is_dir():
        raise CorpusError(f"Corpus directory {corpus} not found: pass --corpus DIR, the folder they ask about.")
    collection = collection_retriever(settings) if corpus is None else None
    if features is not None:
        require_embedded(settings)
    read = tuple(layers or default_layers(settings)) if features is not None else ()
    keep = keep_features(features, settings, corpus, file_label(questions)) if features is not None else None
    return evaluate(
        settings,
        corpus,
        labelled,
        limit,
        progress,
        answers=answers,
        read_layers=read,
        on_judged=keep,
        collection=collection,
    )


def default_layers(settings: Settings) -> list[int]:
    """The layer read when none is named: the configured probe's, else 60 % of the judge's depth (the probe
    study's best on both presets' families)."""
    if isinstance(settings.guard.probe, Path):
        return load_probe(settings.guard.probe).layers
    judge = build_chat_model(settings.judge, settings)
    return [round(0.6 * judge.loaded.n_layers)]  # type: ignore[attr-defined]


def file_label(path: Path) -> str:
    """A questions file as figures name it: with its folder, since sets tend to be called questions.jsonl."""
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
