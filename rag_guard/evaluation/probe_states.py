"""What a probe is fitted on: per labelled question, its label, group, prompt-level signals and hidden states
(the verdict's and the answer start's, at each layer read).

Reading them costs one guard call per question (seconds each on a CPU); the states are kept in an `.npz`
file keyed by the model and the question, so fitting again with other layers or other options, or fitting on
what `rag-guard eval --features` already read, evaluates nothing twice.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from rag_guard.config import ModelSettings, Settings
from rag_guard.errors import ConfigError, CorpusError
from rag_guard.evaluation.evaluate import EvalRow, Evaluator, OnJudged
from rag_guard.evaluation.questions import LabelledQuestion
from rag_guard.judging.probe import CALLS
from rag_guard.judging.signals import Signals

Progress = Callable[[int, int], None]
StateKey = tuple[str, int]
"""(call, layer): one call's state at one layer."""


@dataclass
class FeatureRow:
    """One labelled question as the judge saw it."""

    key: str
    answerable: bool
    group: str
    source: str
    """The questions file it came from, so figures can be given per set."""
    verdict: float
    extract: float | None
    states: dict[StateKey, np.ndarray] = field(default_factory=dict)
    model: str = ""
    """The sha256 of the GGUF that read it, so a probe is fitted on its own model's states only; empty in
    files written before it was kept."""

    @property
    def signals(self) -> Signals:
        return Signals(verdict=self.verdict, extract=self.extract)

    @property
    def by_call(self) -> dict[str, dict[int, np.ndarray]]:
        """The states as the guard hands them to a probe: by call, then by layer."""
        nested: dict[str, dict[int, np.ndarray]] = {}
        for (call, layer), state in self.states.items():
            nested.setdefault(call, {})[layer] = state
        return nested


def question_key(model_sha256: str, prompt_sha256: str, question: LabelledQuestion, corpus: Path | None) -> str:
    """Who judged what, how: the model, its prompts, the question and its passage (given, or retrieved from
    which corpus)."""
    where = question.context if question.context is not None else f"corpus:{corpus.name if corpus else ''}"
    return hashlib.sha1(f"{model_sha256}\0{prompt_sha256}\0{question.question}\0{where}".encode()).hexdigest()


def save_features(path: Path, rows: Sequence[FeatureRow]) -> None:
    """Write rows (merged with those already in `path`) as one `.npz`."""
    merged = {row.key: row for row in load_features(path)} if path.is_file() else {}
    merged.update({row.key: row for row in rows})
    kept = list(merged.values())
    read = sorted({key for row in kept for key in row.states})
    arrays: dict[str, np.ndarray] = {
        "key": np.array([r.key for r in kept]),
        "answerable": np.array([r.answerable for r in kept], dtype=bool),
        "group": np.array([r.group for r in kept]),
        "source": np.array([r.source for r in kept]),
        "verdict": np.array([r.verdict for r in kept], dtype=np.float64),
        "extract": np.array([math.nan if r.extract is None else r.extract for r in kept], dtype=np.float64),
        "model": np.array([r.model for r in kept]),
    }
    for key in read:
        width = next(r.states[key].size for r in kept if key in r.states)
        arrays[_array_name(key)] = np.stack(
            [r.states.get(key, np.full(width, np.nan, dtype=np.float32)) for r in kept]
        ).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_features(path: Path) -> list[FeatureRow]:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CorpusError(f"Features file {path} cannot be read ({exc}); delete it to read the states again.") from None
    stacked = {key: data[name] for name in data.files if (key := _state_key(name)) is not None}
    models = data["model"] if "model" in data.files else np.full(len(data["key"]), "")
    rows = []
    for i, key in enumerate(data["key"]):
        extract = float(data["extract"][i])
        states = {key: array[i] for key, array in stacked.items() if not np.isnan(array[i][0])}
        rows.append(
            FeatureRow(
                key=str(key),
                answerable=bool(data["answerable"][i]),
                group=str(data["group"][i]),
                source=str(data["source"][i]),
                verdict=float(data["verdict"][i]),
                extract=None if math.isnan(extract) else extract,
                states=states,
                model=str(models[i]),
            )
        )
    return rows


def features_of(path: Path, settings: Settings) -> list[FeatureRow]:
    """The rows of `path` read by the configured embedded judge (and those of files too old to say which
    model read them); `CorpusError` when every row says another model read it: states of one GGUF mean
    nothing to another's probe."""
    from rag_guard.factory import model_identity

    judge = require_embedded(settings)
    sha, described = model_identity(judge.path, judge.preset)
    rows = load_features(path)
    mine = [row for row in rows if row.model in (sha, "")]
    if rows and not mine:
        raise CorpusError(
            f"Every row of {path} was read by another model than the judge ({described}): point model.preset "
            "or model.path at the GGUF that read them, or read the states again with this one."
        )
    return mine


def _array_name(key: StateKey) -> str:
    """The verdict's states keep the name they had before the answer start's were read, so older files load."""
    call, layer = key
    return f"layer_{layer}" if call == "verdict" else f"{call}_layer_{layer}"


def _state_key(name: str) -> StateKey | None:
    call, _, layer = name.rpartition("layer_")
    if not layer.isdigit() or call not in ("", *(f"{c}_" for c in CALLS)):
        return None
    return (call.removesuffix("_") or "verdict", int(layer))


def complete(rows: Iterable[FeatureRow], keys: Iterable[StateKey]) -> dict[str, FeatureRow]:
    """The rows that hold every one of `keys`, by question key."""
    wanted = set(keys)
    return {row.key: row for row in rows if wanted <= row.states.keys()}


def require_embedded(settings: Settings) -> ModelSettings:
    """The judge's settings, when it is the embedded model: the only one whose hidden states can be read."""
    judge = settings.judge
    if judge.provider != "llamacpp":
        raise ConfigError(
            f"Hidden states come from the embedded model only; the judge's provider is {judge.provider}. "
            "Set model.provider (or guard.model.provider) to llamacpp to fit a probe."
        )
    return judge


def read_features(
    settings: Settings,
    questions: Sequence[tuple[str, LabelledQuestion]],
    corpus: Path | None,
    layers: Iterable[int],
    cache: Path | None = None,
    progress: Progress | None = None,
) -> list[FeatureRow]:
    """Each (file, question) judged by the embedded judge with the default prompt-level signals, its states at
    `layers` read in the verdict's and the answer start's forward passes; rows already in `cache` are not
    evaluated again.

    Questions with a `context` are judged against it, the others against `corpus` (ingested into a temporary
    store, as `rag-guard eval` does). A question whose verdict has no probability is left out."""
    from rag_guard.factory import model_identity

    layers = sorted(set(layers))
    wanted = list(product(CALLS, layers))
    judge = require_embedded(settings)
    if corpus is None and (without := [q.question for _, q in questions if q.context is None]):
        raise CorpusError(
            f"{len(without)} question(s) carry no context, e.g. {without[0]!r}: pass --corpus DIR to retrieve theirs."
        )
    sha, _ = model_identity(judge.path, judge.preset)
    prompts = settings.guard.prompt_fingerprint
    keys = [question_key(sha, prompts, q, corpus) for _, q in questions]
    cached = complete(load_features(cache), wanted) if cache is not None and cache.is_file() else {}
    todo = [i for i, key in enumerate(keys) if key not in cached]
    fresh: dict[str, FeatureRow] = {}
    if todo:
        # The states are read in the default prompt-level signals' calls, whatever the config adds.
        guard_settings = settings.guard.model_copy(update={"signals": list(CALLS), "calibration": None})
        plain = settings.model_copy(update={"guard": guard_settings})
        with Evaluator(plain, read_layers=tuple(layers)) as evaluator:
            done = 0
            for source in dict.fromkeys(questions[i][0] for i in todo):  # one file at a time: its rows' source
                mine = [questions[i][1] for i in todo if questions[i][0] == source]
                counted = (lambda n, _, done=done: progress(done + n, len(todo))) if progress else None
                keep = _keeper(plain, corpus, source, wanted, cache, fresh)
                evaluator.evaluate(corpus, mine, counted, on_judged=keep)  # saved as it goes: a stop keeps it
                done += len(mine)
    rows = []
    for (source, _), key in zip(questions, keys, strict=True):
        row = fresh.get(key) or cached.get(key)
        if row is not None:
            row.source = source
            rows.append(row)
    return rows


def _keeper(
    settings: Settings,
    corpus: Path | None,
    source: str,
    wanted: Sequence[StateKey],
    cache: Path | None,
    fresh: dict[str, FeatureRow],
) -> OnJudged:
    """Each batch's rows that read every `wanted` state, into `fresh` and, when given, the `cache` file."""

    def keep(questions: list[LabelledQuestion], rows: list[EvalRow]) -> None:
        read = [
            row for row in row_features(rows, questions, settings, corpus, source) if set(wanted) <= row.states.keys()
        ]
        fresh.update({row.key: row for row in read})
        if cache is not None and read:
            save_features(cache, read)

    return keep


def _arrays(hidden_states: dict[str, dict[int, list[float]]]) -> dict[StateKey, np.ndarray]:
    return {
        (call, int(layer)): np.asarray(state, dtype=np.float32)
        for call, by_layer in hidden_states.items()
        for layer, state in by_layer.items()
    }


def row_features(
    rows: Sequence[EvalRow],
    questions: Sequence[LabelledQuestion],
    settings: Settings,
    corpus: Path | None,
    source: str,
) -> list[FeatureRow]:
    """The rows of a `rag-guard eval` run (one per question, in order) that read hidden states, as
    fit-probe's features."""
    from rag_guard.factory import model_identity

    sha, _ = model_identity(settings.judge.path, settings.judge.preset)
    prompts = settings.guard.prompt_fingerprint
    return [
        FeatureRow(
            key=question_key(sha, prompts, question, corpus),
            answerable=row.answerable,
            group=row.group or "none",
            source=source,
            verdict=row.signals.verdict,
            extract=row.signals.extract,
            states=_arrays(row.hidden_states),
            model=sha,
        )
        for question, row in zip(questions, rows, strict=True)
        if row.signals is not None and row.hidden_states
    ]


def keep_features(path: Path, settings: Settings, corpus: Path | None, source: str) -> OnJudged:
    """An `evaluate(on_judged=...)` that adds each batch's states to the features file `path` as it comes,
    so a reading stopped part way keeps what it read."""

    def keep(questions: list[LabelledQuestion], rows: list[EvalRow]) -> None:
        if read := row_features(rows, questions, settings, corpus, source):
            save_features(path, read)

    return keep
