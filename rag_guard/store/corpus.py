"""Reading a corpus directory into chunks with stable ids.

A chunk's id is a hash of its folder, its source path, its position and its text, so ingesting the same
files again yields the same ids (idempotent), an edited file yields new ids for the chunks that changed, the
ids of a deleted file simply stop appearing, and two folders in one collection never share a chunk. Each
chunk records its folder (`metadata["corpus"]`), so re-ingesting one folder touches only its own chunks.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag_guard.errors import CorpusError

log = logging.getLogger(__name__)

SUFFIXES = (".md", ".txt")
MAX_FILE_BYTES = 5 * 1024 * 1024
"""Larger files are skipped with a warning: a corpus article this size is almost always a mistake."""


@dataclass
class CorpusScan:
    """The chunks of every usable file, and the files skipped with the reason."""

    chunks: list[Document] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    files: int = 0


def chunk_id(corpus: str, source: str, index: int, text: str) -> str:
    digest = hashlib.sha256(f"{corpus}\0{source}\0{index}\0{text}".encode()).hexdigest()
    return digest[:32]


def corpus_key(corpus_dir: Path) -> str:
    """The folder as its chunks record it: its absolute path, however it was named on the command line."""
    return corpus_dir.resolve().as_posix()


def read_text_file(path: Path) -> str:
    """The file's text, or `CorpusError` saying why it cannot be ingested."""
    size = path.stat().st_size
    if size == 0:
        raise CorpusError("the file is empty")
    if size > MAX_FILE_BYTES:
        raise CorpusError(f"the file is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES / 1e6:.0f} MB limit")
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise CorpusError("the file looks binary (it contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"the file is not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from None
    if not text.strip():
        raise CorpusError("the file holds only whitespace")
    return text


def corpus_files(corpus_dir: Path) -> list[Path]:
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus directory {corpus_dir} does not exist. Create it and put .md or .txt files in it, "
            "or point demo.corpus_dir (or --corpus) at the right place."
        )
    return sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def scan_corpus(corpus_dir: Path, chunk_size: int, chunk_overlap: int) -> CorpusScan:
    """Split every .md/.txt file under `corpus_dir`; unusable files are skipped and reported, not fatal."""
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True)
    scan = CorpusScan()
    root = corpus_dir.resolve()
    corpus = corpus_key(corpus_dir)
    for path in corpus_files(corpus_dir):
        source = path.resolve().relative_to(root).as_posix()
        try:
            text = read_text_file(path)
        except (CorpusError, OSError) as exc:
            scan.skipped[source] = str(exc)
            log.warning("skipped %s: %s", path, exc)
            continue
        scan.files += 1
        scan.chunks.extend(_chunks(corpus, source, text, splitter))
    return scan


def _chunks(corpus: str, source: str, text: str, splitter: RecursiveCharacterTextSplitter) -> Iterable[Document]:
    for index, piece in enumerate(splitter.create_documents([text])):
        yield Document(
            id=chunk_id(corpus, source, index, piece.page_content),
            page_content=piece.page_content,
            metadata={
                "source": source,
                "corpus": corpus,
                "chunk_index": index,
                "start_index": piece.metadata["start_index"],
            },
        )
