"""BM25 keyword search over a Chroma collection's chunks, for hybrid retrieval (`chroma.search: hybrid`).

Local Chroma has no sparse (keyword) index, so the chunks are indexed in memory with bm25s. The index is
built from the collection on first use and again only when the collection's chunk ids change (an ingest
added, edited or removed files), so a running server picks up a new ingest without a restart.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import bm25s
from langchain_chroma import Chroma

# bm25s sets its own logger to DEBUG, which would print a line to the user at every index build.
logging.getLogger("bm25s").setLevel(logging.WARNING)

STOPWORDS = "en"


def _tokens(texts: list[str]) -> bm25s.tokenization.Tokenized:
    return bm25s.tokenize(texts, stopwords=STOPWORDS, show_progress=False)


def _fingerprint(ids: list[str]) -> str:
    return hashlib.sha256("\0".join(sorted(ids)).encode()).hexdigest()


@dataclass
class _Built:
    fingerprint: str
    ids: list[str]
    index: bm25s.BM25 | None
    """None when no chunk has a word BM25 can index (an empty collection, or stopwords only)."""


class KeywordIndex:
    """The ids of a collection's chunks ranked by BM25 against a question."""

    def __init__(self, store: Chroma) -> None:
        self._store = store
        self._built: _Built | None = None

    def ranked(self, query: str, depth: int) -> list[str]:
        """At most `depth` chunk ids, best first; only chunks that share a word with the question."""
        built = self._current()
        if built.index is None or depth < 1:
            return []
        query_tokens = _tokens([query])
        if not any(len(ids) for ids in query_tokens.ids):
            return []
        found, scores = built.index.retrieve(
            query_tokens, k=min(depth, len(built.ids)), show_progress=False, n_threads=1
        )
        return [built.ids[int(i)] for i, score in zip(found[0], scores[0], strict=True) if score > 0]

    def _current(self) -> _Built:
        ids = self._store.get(include=[])["ids"]
        fingerprint = _fingerprint(ids)
        if self._built is None or self._built.fingerprint != fingerprint:
            self._built = self._build()
        return self._built

    def _build(self) -> _Built:
        held = self._store.get(include=["documents"])
        ids, texts = list(held["ids"]), [text or "" for text in held["documents"]]
        tokens = _tokens(texts)
        if not ids or not tokens.vocab:
            return _Built(_fingerprint(ids), ids, None)
        index = bm25s.BM25()
        index.index(tokens, show_progress=False)
        return _Built(_fingerprint(ids), ids, index)
