"""What every `rag-guard` command shares: the Typer app, the consoles, options, errors and progress bars."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag_guard.config import Settings, load_config
from rag_guard.errors import RagGuardError
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

CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="Chroma collection to use (default: chroma.collection); `rag-guard collections` lists them.",
    ),
]


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a RagGuardError's message (no traceback) and exit with its code."""
    try:
        yield
    except RagGuardError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def load_settings(config: Path | None, collection: str | None = None) -> Settings:
    return load_config(config).with_collection(collection)


@contextmanager
def spinner(text: str) -> Iterator[None]:
    with err.status(text, spinner="dots"):
        yield


def build_pipeline(settings: Settings) -> GuardedRAG:
    with spinner("Loading the embedding model, the store and the language model..."):
        return GuardedRAG.from_config(settings)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


LOG_WIDTH = 160
"""Columns for a table printed to a file or a pipe (`make demo > log`), where rich would assume 80."""


def print_wide(table: Table) -> None:
    (out if out.is_terminal else Console(file=out.file, width=LOG_WIDTH)).print(table)


def updater(progress: Progress, task: TaskID) -> Callable[[int, int], None]:
    return lambda done, total: progress.update(task, completed=done, total=total)


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
