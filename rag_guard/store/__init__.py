"""The store: reading a corpus into chunks, embedding them offline, Chroma, idempotent ingest, the retriever.

Imports nothing of the package but its errors; its two config sections (`embeddings:`, `chroma:`) are
declared here and composed by `rag_guard.config`.
"""

from rag_guard.store.chroma import (
    ChromaRetriever,
    CollectionSummary,
    IngestReport,
    chroma_client,
    collection_summaries,
    ensure_ingested,
    ingest,
    open_store,
)
from rag_guard.store.corpus import CorpusScan, corpus_key, scan_corpus
from rag_guard.store.embeddings import BUNDLED_EMBEDDING, embedding_label, local_embeddings, mean_pooled
from rag_guard.store.settings import ChromaSettings, EmbeddingSettings

__all__ = [
    "BUNDLED_EMBEDDING",
    "ChromaRetriever",
    "ChromaSettings",
    "CollectionSummary",
    "CorpusScan",
    "EmbeddingSettings",
    "IngestReport",
    "chroma_client",
    "collection_summaries",
    "corpus_key",
    "embedding_label",
    "ensure_ingested",
    "ingest",
    "local_embeddings",
    "mean_pooled",
    "open_store",
    "scan_corpus",
]
