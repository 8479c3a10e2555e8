"""The commands that measure and tune the guard: eval, eval-suite, calibrate and fit-probe.

`fit-probe` fits with scikit-learn and `eval --report` draws with matplotlib: both come with the `study` extra
(`pip install 'rag-guard[study]'`, which `make` installs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from rag_guard.cli.shared import (
    CollectionOption,
    ConfigOption,
    app,
    err,
    figure,
    load_settings,
    out,
    print_wide,
    progress_bar,
    updater,
    user_errors,
)
from rag_guard.errors import ConfigError
from rag_guard.extras import require

LayerOption = Annotated[
    list[int] | None, typer.Option("--layer", help="With --features: a layer to keep (repeat for several).")
]


@app.command("eval")
def evaluate(
    corpus: Annotated[Path, typer.Option(help="Directory of the documents the questions are about.")],
    questions: Annotated[
        Path | None, typer.Option(help="Labelled questions, JSON Lines like corpora/questions.jsonl.")
    ] = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    limit: Annotated[int | None, typer.Option(min=2, help="A stratified sample of this many questions.")] = None,
    conversations: Annotated[
        Path | None,
        typer.Option(
            help="Labelled conversations instead (bench/sets/conversations.jsonl): each follow-up's decision "
            "against its standalone question's."
        ),
    ] = None,
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
    """Measure the guard on labelled questions (AUROC, calibration, precision and coverage at the thresholds),
    or on labelled conversations (`--conversations`)."""
    if conversations is not None:
        _evaluate_conversations(corpus, conversations, config, as_json)
        return
    with user_errors():
        from rag_guard.evaluation.labelled import judge_labelled

        if questions is None:
            raise ConfigError("Pass --questions FILE (labelled questions) or --conversations FILE.")

        if report is not None:  # before judging: a missing library should not cost a whole reading
            require("study", "eval --report")
        with progress_bar() as progress:
            result = judge_labelled(
                load_settings(config),
                corpus,
                questions,
                limit,
                updater(progress, progress.add_task("Judging", total=None)),
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


def _evaluate_conversations(corpus: Path, conversations: Path, config: Path | None, as_json: bool) -> None:
    with user_errors():
        from rag_guard.evaluation.conversations import evaluate_conversations, load_conversations
        from rag_guard.evaluation.evaluate import temporary_retriever
        from rag_guard.pipeline import GuardedRAG

        labelled = load_conversations(conversations)
        if not corpus.is_dir():
            raise ConfigError(f"Corpus directory {corpus} not found: pass --corpus DIR.")
        settings = load_settings(config)
        with temporary_retriever(settings, corpus) as retriever, progress_bar() as progress:
            rag = GuardedRAG.from_config(settings, retriever=retriever)
            task = progress.add_task("Conversations", total=sum(len(c.turns) for c in labelled))
            result = evaluate_conversations(rag, labelled, lambda done, total: progress.update(task, completed=done))
    if as_json:
        out.print_json(result.model_dump_json())
        return
    table = Table(title=f"rag_guard eval: {conversations.name} ({result.conversations} conversations)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("follow-ups", str(result.follow_ups))
    table.add_row("decision as its standalone question's", f"{result.agreement:.3f}")
    table.add_row("unanswerable follow-ups answered", str(result.unanswerable_answered))
    table.add_row("ambiguous follow-ups asked back", f"{result.ambiguous_asked} / {result.ambiguous}")
    for label, value in (("follow-up", result.rewrite_s_follow_up), ("first turn", result.rewrite_s_first_turn)):
        table.add_row(f"rewrite seconds per {label}", "n/a" if value is None else f"{value:.2f}")
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
    with user_errors():
        from rag_guard.evaluation.suite import load_suite, run_suite
        from rag_guard.evaluation.suite_scores import READINGS

        settings = load_settings(config)
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
            score.name, score.style, str(score.n), str(score.answerable), *(figure(score.auroc[r]) for r in READINGS)
        )
    print_wide(table)
    styles = Table(title="Per style: mean (worst)")
    for column in ("style", "sets", *READINGS, "configured - verdict + answer start, 95 % interval"):
        styles.add_column(column, justify="left" if column == "style" else "right")
    for style in result.styles:
        gain = "n/a" if style.gain is None else f"{style.gain[0]:+.3f} [{style.gain[1]:+.3f}, {style.gain[2]:+.3f}]"
        styles.add_row(
            style.style,
            str(style.sets),
            *(f"{figure(style.mean[r])} ({figure(style.worst[r])})" for r in READINGS),
            gain,
        )
    print_wide(styles)


@app.command()
def calibrate(
    questions: Annotated[
        Path | None,
        typer.Option(
            help="Labelled questions, JSON Lines like corpora/questions.jsonl; with --synthetic, where the "
            "written ones are saved (default: beside the store)."
        ),
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(help="Directory of the documents the questions are about (default: judged on the collection)."),
    ] = None,
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="No labelled questions needed: the model first writes a question each sampled chunk answers, "
            "judged as written and with every chunk stating its answer left out.",
        ),
    ] = False,
    chunks: Annotated[int, typer.Option(min=5, help="With --synthetic: the chunks sampled to write from.")] = 30,
    collection: CollectionOption = None,
    config: ConfigOption = None,
    target_precision: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Share of answered questions that must be answerable.")
    ] = 0.95,
    write: Annotated[bool, typer.Option("--write", help="Store calibration and thresholds in the config.")] = False,
    limit: Annotated[int | None, typer.Option(min=10, help="A stratified sample of this many questions.")] = None,
) -> None:
    """Fit the calibration on labelled questions, or on questions written from the collection (--synthetic),
    and choose thresholds for a target answered precision."""
    if synthetic and corpus is not None:
        raise typer.BadParameter(
            "--synthetic writes questions about a collection, not a folder: ingest the folder "
            "(`rag-guard ingest --corpus DIR --collection NAME`), then pass --collection NAME.",
            param_hint="--corpus",
        )
    if not synthetic and questions is None:
        raise typer.BadParameter(
            "give labelled questions, or --synthetic to have them written from the collection",
            param_hint="--questions",
        )
    with user_errors():
        from rag_guard.config import write_guard_calibration
        from rag_guard.evaluation.calibrate_command import SyntheticRun, calibrate_synthetic, synthetic_questions_path
        from rag_guard.evaluation.calibrate_command import calibrate as run_calibration

        settings = load_settings(config, collection)
        with progress_bar() as progress:
            if synthetic:
                questions = questions or synthetic_questions_path(settings)
                task = progress.add_task("Writing, then judging questions", total=None)
                run = calibrate_synthetic(settings, questions, chunks, target_precision, updater(progress, task))
            else:
                task = progress.add_task("Judging", total=None)
                run = run_calibration(settings, corpus, questions, target_precision, limit, updater(progress, task))
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
        table.add_row(name, figure(value))
    weights = ", ".join(f"{name} {weight:.3f}" for name, weight in fitted.weights.items())
    table.add_row("weights; bias", f"{weights}; {fitted.bias:.3f}")
    table.add_row("answer_threshold / clarify_threshold", f"{choice.answer_threshold} / {choice.clarify_threshold}")
    precision = "n/a" if choice.expected_precision is None else f"{choice.expected_precision:.3f}"
    read = "from the fit" if run.expected else "held out"
    table.add_row(f"expected answered precision ({read})", precision)
    table.add_row(f"expected coverage ({read})", f"{choice.expected_coverage:.3f}")
    out.print(table)
    if not choice.reached_target:
        err.print(
            f"[yellow]No threshold reaches precision {target_precision} ({read}); the best is {precision} "
            "(shown above).[/]",
            highlight=False,
        )
    if choice.expected_coverage < LOW_COVERAGE:
        written = (
            " Written questions set a strict bar: on the bundled notes and a SQuAD article their thresholds "
            "answered 0% and 2% of labelled answerable questions (docs/studies/thresholds.md)."
            if isinstance(run, SyntheticRun)
            else ""
        )
        err.print(
            f"[yellow]These thresholds would answer {choice.expected_coverage:.0%} of the answerable questions: "
            f"most replies would be clarifying questions.{written} Keep the shipped thresholds, lower "
            "--target-precision, or fit on more labelled questions.[/]",
            highlight=False,
        )
    if write:
        target = settings.source or Path("config.yaml")
        with user_errors():
            write_guard_calibration(target, fitted, choice.answer_threshold, choice.clarify_threshold)
        out.print(f"Wrote guard.calibration and the thresholds to {target}.")
    if isinstance(run, SyntheticRun):
        out.print(
            f"The questions written from {run.sampled} chunks are in {run.questions}, each twice: as written, and "
            "with its answer withheld from what is retrieved (`withhold`). Read them, drop or fix a wrong one, "
            f"and fit again on them with `rag-guard calibrate --questions {run.questions}`."
        )


LOW_COVERAGE = 0.5
"""Expected coverage below which `calibrate` warns that its thresholds would mostly clarify."""


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
        Path | None, typer.Option(help="Directory of the documents for questions without a context.")
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
    with user_errors():
        require("study", "fit-probe")
        from rag_guard.evaluation.probe_command import fit_probe_on, fit_probe_on_features

        settings = load_settings(config)
        call_sets = [_call_set(text) for text in calls] if calls else None
        layer_sets = [_layer_set(text) for text in layers] if layers else None
        if features is not None and not questions:
            run = fit_probe_on_features(
                settings, features, sources or (), held_out or (), call_sets, layer_sets, split_by
            )
        else:
            with progress_bar() as progress:
                task = progress.add_task("Reading hidden states", total=None)
                run = fit_probe_on(
                    settings, questions or [], call_sets, layer_sets, corpus, features, limit, updater(progress, task)
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
        per_file.add_row(score.label, str(score.n), "yes" if score.fitted else "no", *(figure(v) for v in cells))
    print_wide(per_file)
    weights = ", ".join(f"{k} {v:.3f}" for k, v in run.combination.weights.items())
    out.print(
        f"Combination: {weights}; bias {run.combination.bias:.3f}; lowers at most {_bound(run.probe.max_lowering)}. "
        f"Wrote {output}.",
        highlight=False,
    )


def _bound(log_odds: float | None) -> str:
    """How far a probe may lower the score, as printed."""
    return "none" if log_odds is None else f"{log_odds:g}"


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
