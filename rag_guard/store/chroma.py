"""The Chroma store: opening it, idempotent ingest, and a retriever that keeps similarity scores."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from filelock import FileLock, Timeout
from langchain_chroma import Chroma
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, PrivateAttr

from rag_guard.errors import ConfigError, CorpusError, StoreBusyError, StoreUnavailableError
from rag_guard.store.corpus import CorpusScan, corpus_key, scan_corpus
from rag_guard.store.fusion import reciprocal_rank_fusion
from rag_guard.store.keyword_index import KeywordIndex
from rag_guard.store.readers import READERS
from rag_guard.store.reading import as_read, distinct
from rag_guard.store.settings import ChromaSettings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

log = logging.getLogger(__name__)

INGEST_BATCH = 64
INGEST_LOCK = ".ingest.lock"


def open_store(
    settings: ChromaSettings,
    embeddings: Embeddings,
    embedded_by: str | None = None,
    *,
    replace_mismatched: bool = False,
    create: bool = False,
) -> Chroma:
    """The collection; with `create` (ingest), created with cosine distance if new, else a collection that
    does not exist is a `CorpusError` naming those that do: reading never creates one.

    With `embedded_by`, a collection filled by other embeddings is an error (its vectors are not comparable
    with the question's), or, for `replace_mismatched` (ingest), emptied so it can be filled again.
    """
    client = chroma_client(settings)
    metadata = {"hnsw:space": "cosine", **({"embedded_by": embedded_by} if embedded_by else {})}
    if not create:
        _must_exist(client, settings)
    collection = client.get_or_create_collection(settings.collection, metadata=metadata)
    recorded = (collection.metadata or {}).get("embedded_by")
    if embedded_by and recorded is None:  # a collection from before labels, or opened without one
        kept = {key: value for key, value in (collection.metadata or {}).items() if not key.startswith("hnsw:")}
        collection.modify(metadata={**kept, "embedded_by": embedded_by})  # Chroma refuses hnsw:* changes
    if embedded_by and recorded and recorded != embedded_by:
        if not replace_mismatched:
            raise CorpusError(
                f"The collection '{settings.collection}' in {settings.location} holds vectors from "
                f"{recorded}, but the config now embeds with {embedded_by}. Run `rag-guard ingest` to embed the "
                "corpus again, or set chroma.collection to a new name."
            )
        log.warning(
            "collection %s was embedded with %s; emptying it for %s", settings.collection, recorded, embedded_by
        )
        client.delete_collection(settings.collection)
        client.create_collection(settings.collection, metadata=metadata)
    return Chroma(
        client=client,
        collection_name=settings.collection,
        embedding_function=embeddings,
        collection_metadata=metadata,
    )


def collection_names(client: ClientAPI) -> list[str]:
    return sorted(collection.name for collection in client.list_collections())


def _must_exist(client: ClientAPI, settings: ChromaSettings) -> None:
    """`CorpusError` when the collection does not exist, naming those that do and how to make it."""
    existing = collection_names(client)
    if settings.collection in existing:
        return
    held = f"it holds {', '.join(repr(name) for name in existing)}" if existing else "it holds none yet"
    raise CorpusError(
        f"The collection '{settings.collection}' does not exist in the store at {settings.location} ({held}). "
        f"Create it with `rag-guard ingest --corpus DIR --collection {settings.collection}`, or name one that "
        "exists (`--collection`, `chroma.collection`; `rag-guard collections` lists them)."
    )


def delete_collection(settings: ChromaSettings) -> int:
    """Remove the collection and its chunks from the store; returns how many chunks it held."""
    client = chroma_client(settings)
    _must_exist(client, settings)
    chunks = client.get_collection(settings.collection).count()
    client.delete_collection(settings.collection)
    return chunks


def chroma_client(settings: ChromaSettings) -> ClientAPI:
    """An on-disk client (embedded) or a connection to a Chroma server (http), checked with a heartbeat."""
    import chromadb

    if settings.mode == "embedded":
        settings.persist_directory.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.persist_directory))
    url = f"{'https' if settings.ssl else 'http'}://{settings.host}:{settings.port}"
    try:
        return chromadb.HttpClient(
            host=settings.host,
            port=settings.port,
            ssl=settings.ssl,
            headers=_expand_env(settings.headers),
            settings=chromadb.Settings(anonymized_telemetry=False),
        )
    except Exception as exc:  # chromadb raises ValueError/ConnectionError/httpx errors by version
        raise StoreUnavailableError(
            f"Cannot reach the Chroma server at {url} ({type(exc).__name__}: {exc}). Start it with "
            f"`chroma run --path DIR --host {settings.host} --port {settings.port}`, or fix chroma.host, "
            "chroma.port, chroma.ssl and chroma.headers (or set chroma.mode: embedded)."
        ) from None


def _expand_env(headers: dict[str, str]) -> dict[str, str]:
    """Header values written `${NAME}` come from the environment; a missing variable is an error."""
    expanded = {}
    for key, value in headers.items():
        match = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value.strip())
        if match:
            if match[1] not in os.environ:
                raise ConfigError(f"chroma.headers.{key} reads ${match[1]}, which is not set: export it first.")
            value = os.environ[match[1]]
        expanded[key] = value
    return expanded


@dataclass
class IngestReport:
    files: int
    chunks: int
    added: int
    removed: int
    unchanged: int
    skipped: dict[str, str]


def ingest(
    store: Chroma,
    corpus_dir: Path,
    settings: ChromaSettings,
    progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Make the collection hold exactly the current chunks of `corpus_dir`: add new ones, delete its stale
    ones. Chunks other folders put in the same collection are left alone, and so are those of a file that
    cannot be read now (a file turned corrupt loses nothing already stored; the report names it).

    Safe to interrupt at any point: each batch lands whole or not at all (Chroma commits it in one SQLite
    transaction), chunk ids are content hashes, and the next run adds whatever is missing. A file lock keeps
    a second ingest into the same directory from interleaving with this one.
    """
    settings.persist_directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(settings.persist_directory / INGEST_LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StoreBusyError(
            f"Another ingest is running on {settings.persist_directory}. Wait for it to finish, then run "
            "ingest again (it will only apply what is still missing)."
        ) from None
    try:
        return _ingest(store, corpus_dir, settings, progress)
    finally:
        lock.release()


def _ingest(
    store: Chroma,
    corpus_dir: Path,
    settings: ChromaSettings,
    progress: Callable[[int, int], None] | None,
) -> IngestReport:
    scan: CorpusScan = scan_corpus(corpus_dir, settings.chunk_size, settings.chunk_overlap)
    if not scan.chunks:
        if not store.get(limit=1, include=[])["ids"]:
            store.delete_collection()  # a first ingest that read nothing leaves no empty collection behind
        raise CorpusError(
            f"No usable documents in {corpus_dir}: add files of a type ingest reads ({', '.join(sorted(READERS))}) "
            "and run ingest again." + "".join(f"\n  skipped {name}: {why}" for name, why in scan.skipped.items())
        )
    wanted = {doc.id: doc for doc in scan.chunks}
    held = store.get(include=["metadatas"])
    existing = set(held["ids"])
    folder = corpus_key(corpus_dir)
    stale = sorted(  # a file that could not be read this time keeps what it had
        chunk
        for chunk, metadata in zip(held["ids"], held["metadatas"], strict=True)
        if chunk not in wanted
        and _from_folder(metadata or {}, folder, corpus_dir)
        and str((metadata or {}).get("source")) not in scan.skipped
    )
    new = [doc for doc_id, doc in wanted.items() if doc_id not in existing]
    # New chunks go in before stale ones leave, so a crash midway never leaves a file with no chunks.
    for start in range(0, len(new), INGEST_BATCH):
        batch = new[start : start + INGEST_BATCH]
        store.add_documents(batch, ids=[doc.id for doc in batch])
        if progress:
            progress(start + len(batch), len(new))
    if progress and not new:
        progress(0, 0)
    for start in range(0, len(stale), INGEST_BATCH):
        store.delete(ids=stale[start : start + INGEST_BATCH])
    return IngestReport(
        files=scan.files,
        chunks=len(wanted),
        added=len(new),
        removed=len(stale),
        unchanged=len(wanted) - len(new),
        skipped=scan.skipped,
    )


def _from_folder(metadata: Mapping[str, Any], folder: str, corpus_dir: Path) -> bool:
    """The chunk came from `corpus_dir` (recorded as `folder`, its `corpus_key`). A chunk ingested before
    chunks recorded their folder belongs to the folder that still holds its file."""
    if "corpus" in metadata:
        return metadata["corpus"] == folder
    return (corpus_dir / str(metadata.get("source", ""))).is_file()


@dataclass
class CollectionSummary:
    """One collection as `rag-guard collections` lists it."""

    name: str
    chunks: int
    sources: dict[str, dict[str, int]]
    """Chunks by folder, then by file (the folder is "" for chunks ingested before chunks recorded it)."""


def collection_summaries(settings: ChromaSettings) -> list[CollectionSummary]:
    """Every collection in the store, with its chunks counted by folder and file; no embedder needed."""
    client = chroma_client(settings)
    summaries = []
    for collection in sorted(client.list_collections(), key=lambda c: c.name):
        sources: dict[str, dict[str, int]] = {}
        metadatas = collection.get(include=["metadatas"])["metadatas"] or []
        for metadata in metadatas:
            files = sources.setdefault(str((metadata or {}).get("corpus", "")), {})
            source = str((metadata or {}).get("source", "unknown"))
            files[source] = files.get(source, 0) + 1
        summaries.append(CollectionSummary(name=collection.name, chunks=len(metadatas), sources=sources))
    return summaries


class ChromaRetriever(BaseRetriever):
    """Top-k chunks for a question, each with its cosine similarity to it in `metadata["score"]` (1 = identical).

    `search="dense"` ranks chunks by that similarity alone. `search="hybrid"` fuses it with a BM25 keyword
    ranking (reciprocal rank fusion): a question's rare words (a name, a term) then find their passage when
    the embedding ranks it low (docs/studies/retrieval.md).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Chroma
    k: int = 4
    search: Literal["dense", "hybrid"] = "dense"
    merge_adjacent: bool = False
    _keywords: KeywordIndex | None = PrivateAttr(None)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        leave_out: Callable[[Document], bool] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """`leave_out`: chunks to pass over for the next ones (`LabelledQuestion.withhold`)."""
        fetched = self.k + (SPARE if leave_out is None else 4 * SPARE)
        if self.search == "dense":
            hits = self.store.similarity_search_with_score(query, k=fetched)
            found = distinct([_scored(doc, distance) for doc, distance in hits], self.k, leave_out)
        else:
            found = distinct(self._hybrid(query, fetched), self.k, leave_out)
        return as_read(found) if self.merge_adjacent else found

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        leave_out: Callable[[Document], bool] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The sync search in a thread (Chroma's client is sync), `leave_out` passed on: LangChain's default
        takes no keyword arguments."""
        sync = run_manager.get_sync()
        return await run_in_executor(None, self._get_relevant_documents, query, run_manager=sync, leave_out=leave_out)

    def _hybrid(self, query: str, fetched: int) -> list[Document]:
        depth = max(HYBRID_DEPTH, fetched)
        vector = self.store.embeddings.embed_query(query)
        scored = {
            doc.id: _scored(doc, distance)
            for doc, distance in self.store.similarity_search_by_vector_with_relevance_scores(vector, k=depth)
        }
        if self._keywords is None:
            self._keywords = KeywordIndex(self.store)
        fused = reciprocal_rank_fusion([list(scored), self._keywords.ranked(query, depth)])[:fetched]
        if keyword_only := [chunk for chunk in fused if chunk not in scored]:
            held = self.store.get(ids=keyword_only, include=["documents", "metadatas", "embeddings"])
            scored.update(_with_similarity(held, vector))
        return [scored[chunk] for chunk in fused if chunk in scored]


SPARE = 4
"""Chunks fetched beyond `k`, so that `k` remain when copies of one text are dropped (`reading.distinct`);
four times as many when chunks are also left out."""

HYBRID_DEPTH = 50
"""Chunks each search ranks before fusion: deep enough that a chunk one search ranks highly is scored by
the other's rank too, not only by its own."""


def _scored(doc: Document, distance: float) -> Document:
    return Document(
        id=doc.id, page_content=doc.page_content, metadata={**doc.metadata, "score": round(1.0 - float(distance), 6)}
    )


def _with_similarity(held: Mapping[str, Any], query: list[float]) -> dict[str, Document]:
    """Chunks the keyword search alone found, with their cosine similarity to the question like the rest."""
    found: dict[str, Document] = {}
    wanted = np.asarray(query, dtype=float)
    for chunk, text, metadata, vector in zip(
        held["ids"], held["documents"] or [], held["metadatas"] or [], held["embeddings"], strict=True
    ):
        stored = np.asarray(vector, dtype=float)
        cosine = float(stored @ wanted / (np.linalg.norm(stored) * np.linalg.norm(wanted) or 1.0))
        found[chunk] = _scored(Document(id=chunk, page_content=text or "", metadata=dict(metadata or {})), 1.0 - cosine)
    return found


def ensure_ingested(retriever: BaseRetriever, settings: ChromaSettings) -> None:
    """Refuse to run questions against an empty collection: every answer would be a refusal."""
    store = getattr(retriever, "store", None)
    if isinstance(store, Chroma) and not store.get(limit=1, include=[])["ids"]:
        raise CorpusError(
            f"The collection '{settings.collection}' in {settings.location} is empty: ingest documents into it "
            f"first (`rag-guard ingest --corpus DIR --collection {settings.collection}`, or `rag_guard.store.ingest` "
            "from Python; `make demo` ingests the bundled articles), or pick another collection."
        )
