"""Retrieved chunks as a reader sees them: each text once, and one passage per run of adjacent chunks of a
file. Pure.

A folder copied twice into a collection, or a page repeated in a file (a licence, a disclaimer), returns
the same text under several ids; the copies would fill the guard's `k` places with one passage, so only the
best-ranked is kept.

A splitter cuts a file every `chunk_size` characters, so a passage the retriever finds whole may reach the
guard in two pieces, each beside unrelated ones, and a piece alone reads as less sufficient than the whole.
Chunks of one file that touch or overlap (by `start_index`) are joined in document order, their overlap
written once; the passage takes the best rank and similarity of its pieces, and the citation fields (file,
page, heading) of its first, so its label still points at what the user can open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from langchain_core.documents import Document

GAP = 1
"""Characters allowed between two chunks for them to read as one (a splitter drops the separator)."""


def distinct(chunks: Sequence[Document], k: int, leave_out: Callable[[Document], bool] | None = None) -> list[Document]:
    """The first `k` of `chunks` (in rank order) whose text, spacing aside, no better-ranked chunk has, and
    that `leave_out` does not reject."""
    seen: set[str] = set()
    kept: list[Document] = []
    for chunk in chunks:
        if len(kept) == k:
            break
        text = " ".join(chunk.page_content.split())
        if text not in seen and not (leave_out and leave_out(chunk)):
            seen.add(text)
            kept.append(chunk)
    return kept


def as_read(chunks: Sequence[Document]) -> list[Document]:
    """`chunks` in rank order, adjacent ones of one file merged; chunks without a file or offset kept as they are."""
    runs: list[list[Document]] = []
    for chunk in chunks:
        run = next((run for run in runs if any(_touch(piece, chunk) for piece in run)), None)
        if run is None:
            runs.append([chunk])
        else:
            run.append(chunk)
            _absorb(runs, run)
    return [_joined(run) for run in runs]


def _score(chunk: Document) -> float | None:
    score = chunk.metadata.get("score")
    return float(score) if isinstance(score, int | float) else None


def _absorb(runs: list[list[Document]], grown: list[Document]) -> None:
    """A chunk can bridge two runs (chunks 1 and 3, then 2): fold every run it now touches into `grown`."""
    for run in [run for run in runs if run is not grown]:
        if any(_touch(a, b) for a in run for b in grown):
            grown.extend(run)
            runs.remove(run)


def _touch(a: Document, b: Document) -> bool:
    if _place(a) is None or _place(b) is None or a.metadata.get("source") != b.metadata.get("source"):
        return False
    (a_start, a_end), (b_start, b_end) = _span(a), _span(b)
    return a_start <= b_end + GAP and b_start <= a_end + GAP


def _place(doc: Document) -> int | None:
    start = doc.metadata.get("start_index")
    return start if isinstance(start, int) else None


def _span(doc: Document) -> tuple[int, int]:
    start = _place(doc) or 0
    return start, start + len(doc.page_content)


def _joined(run: list[Document]) -> Document:
    if len(run) == 1:
        return run[0]
    ordered = sorted(run, key=_span)
    text, end = ordered[0].page_content, _span(ordered[0])[1]
    for piece in ordered[1:]:
        start, stop = _span(piece)
        if stop <= end:
            continue  # wholly inside what is already written
        new = piece.page_content[max(0, end - start) :]
        text += new if start < end or not new or new[0].isspace() or text[-1:].isspace() else " " + new
        end = stop
    first, best = ordered[0], run[0]  # `run` is in rank order: its first chunk ranked best
    scores = [score for score in map(_score, run) if score is not None]
    metadata = {**first.metadata, **({"score": max(scores)} if scores else {})}
    return Document(id=best.id, page_content=text, metadata=metadata)
