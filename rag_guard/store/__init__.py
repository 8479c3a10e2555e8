"""The store: reading documents (Markdown, text, PDF, HTML, Word) into chunks, embedding them offline, Chroma,
idempotent ingest, collections' lifecycle, the retriever.

Imports nothing of the package but its errors; its two config sections (`embeddings:`, `chroma:`) are
declared here and composed by `rag_guard.config`.
"""

from rag_guard.store.chroma import (
    ChromaRetriever,
    CollectionSummary,
    IngestReport,
    chroma_client,
    collection_summaries,
    delete_collection,
    ensure_ingested,
    ingest,
    open_store,
)
from rag_guard.store.corpus import CorpusScan, corpus_key, scan_corpus
from rag_guard.store.embeddings import BUNDLED_EMBEDDING, embedding_label, local_embeddings, mean_pooled
from rag_guard.store.readers import READERS, ReadFile, read_file
from rag_guard.store.settings import ChromaSettings, EmbeddingSettings

__all__ = [
    "BUNDLED_EMBEDDING",
    "READERS",
    "ChromaRetriever",
    "ChromaSettings",
    "CollectionSummary",
    "CorpusScan",
    "EmbeddingSettings",
    "IngestReport",
    "ReadFile",
    "chroma_client",
    "collection_summaries",
    "corpus_key",
    "delete_collection",
    "embedding_label",
    "ensure_ingested",
    "ingest",
    "local_embeddings",
    "mean_pooled",
    "open_store",
    "read_file",
    "scan_corpus",
]
