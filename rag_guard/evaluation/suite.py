"""`rag-guard eval-suite`: the guard over many labelled sets, in one temporary store per corpus, scored per set,
per style (mean and worst) and as a paired comparison of readings (`suite_scores.py`).

A suite file lists the sets. A set may be split into one set per article (`split_by: article`) and may drop
its questions' given passages so the guard judges retrieved chunks, as it does in use (`retrieve: true`).
Each set's eval report is saved under the output folder as it finishes, and a set already there is not run
again; a set's rows are kept as they are judged (`NAME.partial.jsonl`), so a reading stopped part way
through a set goes on from its last saved question: a long reading spans as many sessions as it needs.
With a features file, the judge's hidden states are kept on the way too, so the same reading serves a probe
fitted in the format the guard uses (`fit-probe --features`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rag_guard.config import Settings
from rag_guard.errors import ConfigError
from rag_guard.evaluation.evaluate import EvalReport, Evaluator
from rag_guard.evaluation.labelled import default_layers
from rag_guard.evaluation.metrics import stratified_sample
from rag_guard.evaluation.probe_states import keep_features, require_embedded
from rag_guard.evaluation.questions import LabelledQuestion, load_questions
from rag_guard.evaluation.suite_scores import ScoredRow, SetScore, StyleScore, set_score, style_scores
from rag_guard.judging.probe import probe_path

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class SuiteSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    style: str
    """Sets of one style are averaged together (`hand-written`, `squad`)."""
    corpus: Path
    questions: Path
    split_by: Literal["article"] | None = None
    """`article`: one set per value of the questions' `article` field, named NAME/ARTICLE."""
    retrieve: bool = False
    """Drop each question's `context`, so the guard judges what it retrieves from `corpus`."""
    limit: int | None = Field(None, ge=2)
    """A stratified sample of this many questions per set (per article when split)."""


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sets: list[SuiteSet] = Field(min_length=1)


class SuiteReport(BaseModel):
    sets: list[SetScore]
    styles: list[StyleScore]


def load_suite(path: Path) -> Suite:
    """The suite file, `${VAR}` and `${VAR:-default}` expanded, relative paths against the file's folder."""
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"Suite file {path} cannot be read: {exc}") from None
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"Suite file {path}: {where}: {error['msg']}") from None
    base = path.resolve().parent
    for entry in suite.sets:
        entry.corpus = base / _expanded(str(entry.corpus), path)
        entry.questions = base / _expanded(str(entry.questions), path)
    return suite


def _expanded(text: str, path: Path) -> str:
    def value(match: re.Match[str]) -> str:
        found = os.environ.get(match[1], match[2])
        if found is None:
            raise ConfigError(f"Suite file {path} reads ${{{match[1]}}}, which is not set: export it first.")
        return found

    return os.path.expanduser(_VARIABLE.sub(value, text))


def expand(entry: SuiteSet) -> list[tuple[str, list[LabelledQuestion]]]:
    """The set's questions, as one set or one per article, sampled and stripped of context as it says."""
    questions = load_questions(entry.questions)
    if entry.retrieve:
        questions = [q.model_copy(update={"context": None}) for q in questions]
    if entry.split_by is None:
        groups = {entry.name: questions}
    else:
        groups = {}
        for q in questions:
            article = str((q.model_extra or {}).get("article") or "unknown")
            groups.setdefault(f"{entry.name}/{article}", []).append(q)
    if entry.limit is not None:
        groups = {name: stratified_sample(qs, [q.answerable for q in qs], entry.limit) for name, qs in groups.items()}
    return list(groups.items())


def run_suite(
    settings: Settings,
    suite: Suite,
    out: Path,
    announce: Callable[[str, int], None] | None = None,
    features: Path | None = None,
    layers: Sequence[int] = (),
) -> SuiteReport:
    """Every set not yet in `out` judged and saved there (`announce(name, questions)` before each), then
    all of them scored. With `features`, the sets judged now also keep the judge's states at `layers` (the
    probe's when none) there, each under its set's name, for `fit-probe --features`: one reading serves both."""
    out.mkdir(parents=True, exist_ok=True)
    _same_configuration(settings, out)
    read: tuple[int, ...] = ()
    if features is not None:
        require_embedded(settings)
        read = tuple(layers or default_layers(settings))
    found: dict[str, tuple[str, list[ScoredRow]]] = {}
    with Evaluator(settings, read_layers=read) as evaluator:  # the models and each corpus's store built once
        for entry in suite.sets:
            for name, questions in expand(entry):
                file = out / f"{name.replace('/', '__')}.json"
                if file.exists():
                    report = EvalReport.model_validate_json(file.read_text(encoding="utf-8"))
                else:
                    if announce:
                        announce(name, len(questions))
                    partial = file.with_suffix(".partial.jsonl")
                    keep = keep_features(features, settings, entry.corpus, name) if features is not None else None
                    report = evaluator.evaluate(entry.corpus, questions, checkpoint=partial, on_judged=keep)
                    file.write_text(report.model_dump_json(), encoding="utf-8")
                    partial.unlink(missing_ok=True)
                found[name] = (entry.style, [ScoredRow.model_validate(row.model_dump()) for row in report.rows])
    scored = [set_score(name, style, rows) for name, (style, rows) in found.items()]
    return SuiteReport(sets=scored, styles=style_scores(scored, {name: rows for name, (_, rows) in found.items()}))


_REPLY_KEYS = frozenset({"grounding", "answer_style", "verify_answer", "verify_threshold"})
"""guard keys that shape only the reply written after the verdict: a suite writes none, so they may change."""


def _same_configuration(settings: Settings, out: Path) -> None:
    """Refuse to add sets read under another configuration to `out`: their figures would not compare."""
    judging = {
        **_judging(settings.model_dump(mode="json", include={"model", "guard", "chroma", "embeddings"})),
        "probe_sha256": _probe_sha256(settings),
    }
    file = out / "configuration.json"
    if not file.exists():
        file.write_text(json.dumps(judging, indent=1, sort_keys=True), encoding="utf-8")
    elif _judging(json.loads(file.read_text(encoding="utf-8"))) != judging:
        raise ConfigError(
            f"The sets in {out} were judged under another configuration ({file}): give a new --out folder, "
            "or delete that one to start again."
        )


def _probe_sha256(settings: Settings) -> str | None:
    """The probe file the judge loads, by content: `guard.probe: auto` names another file when a release
    ships another probe, and its verdicts are then others."""
    judge = settings.judge
    path = probe_path(settings.guard.probe, judge.path, judge.preset) if judge.provider == "llamacpp" else None
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None and path.is_file() else None


def _judging(configuration: dict[str, Any]) -> dict[str, Any]:
    """What of a configuration shapes the verdicts."""
    chroma = configuration.get("chroma", {})
    return {
        **configuration,
        "chroma": {key: chroma.get(key) for key in ("k", "chunk_size", "chunk_overlap")},
        "guard": {key: value for key, value in configuration.get("guard", {}).items() if key not in _REPLY_KEYS},
    }
