"""Reading a corpus directory into chunks with stable ids, each citing its page and heading.

A chunk's id is a hash of its folder, its source path, its position and its text, so ingesting the same
files again yields the same ids (idempotent), an edited file yields new ids for the chunks that changed, the
ids of a deleted file simply stop appearing, and two folders in one collection never share a chunk. Each
chunk records its folder (`metadata["corpus"]`), so re-ingesting one folder touches only its own chunks, and
the page and heading it starts under (`readers.py`), so a citation can be followed. Every file in the folder
is either read or reported as skipped with the reason and the fix; none is passed over silently.
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
from rag_guard.store.readers import READERS, ReadFile, read_file

log = logging.getLogger(__name__)


@dataclass
class CorpusScan:
    """The chunks of every usable file, and the files skipped with the reason."""

    chunks: list[Document] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    files: int = 0


def chunk_id(corpus: str, source: str, index: int, text: str, cited: str = "") -> str:
    """The chunk's id: a hash of everything it carries (`cited`: its page and heading), so a chunk whose text
    or citation changed is stored again, and an unchanged one is not."""
    digest = hashlib.sha256(f"{corpus}\0{source}\0{index}\0{text}\0{cited}".encode()).hexdigest()
    return digest[:32]


def corpus_key(corpus_dir: Path) -> str:
    """The folder as its chunks record it: its absolute path, however it was named on the command line."""
    return corpus_dir.resolve().as_posix()


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every file under `corpus_dir` but hidden ones (`.DS_Store`, `.git/`), whatever its type."""
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus directory {corpus_dir} does not exist. Create it and put documents in it "
            f"({', '.join(sorted(READERS))}), or point demo.corpus_dir (or --corpus) at the right place."
        )
    root = corpus_dir.resolve()
    return sorted(
        p
        for p in corpus_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.resolve().relative_to(root).parts)
    )


def scan_corpus(corpus_dir: Path, chunk_size: int, chunk_overlap: int) -> CorpusScan:
    """Split every readable file under `corpus_dir`; the others are skipped and reported, never fatal."""
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True)
    scan = CorpusScan()
    root = corpus_dir.resolve()
    corpus = corpus_key(corpus_dir)
    for path in corpus_files(corpus_dir):
        source = path.resolve().relative_to(root).as_posix()
        try:
            read = read_file(path)
        except (CorpusError, OSError) as exc:
            scan.skipped[source] = str(exc)
            log.warning("skipped %s: %s", path, exc)
            continue
        scan.files += 1
        scan.chunks.extend(_chunks(corpus, source, read, splitter))
    return scan


def _chunks(corpus: str, source: str, read: ReadFile, splitter: RecursiveCharacterTextSplitter) -> Iterable[Document]:
    """The file's chunks, none across a page (so its page is the one it cites), each with its page and heading."""
    pieces = [
        (offset + piece.metadata["start_index"], piece.page_content)
        for offset, segment in read.segments()
        for piece in splitter.create_documents([segment])
    ]
    for index, (start, text) in enumerate(pieces):
        cited = {"page": read.page_at(start), "heading": read.heading_at(start)}
        yield Document(
            id=chunk_id(corpus, source, index, text, f"{cited['page']}\0{cited['heading']}"),
            page_content=text,
            metadata={
                "source": source,
                "corpus": corpus,
                "chunk_index": index,
                "start_index": start,
                **{key: value for key, value in cited.items() if value is not None},  # Chroma keeps no None
            },
        )
