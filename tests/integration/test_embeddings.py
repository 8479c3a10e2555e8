"""The bundled embedder on onnxruntime gives sentence-transformers' vectors, so stores stay compatible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag_guard.factory import build_embeddings
from rag_guard.store import EmbeddingSettings
from rag_guard.store.onnx_embeddings import OnnxSentenceEmbeddings
from tests.integration.conftest import CACHE
from tests.integration.helpers import REPO

pytestmark = pytest.mark.integration


def test_the_onnx_embedder_gives_the_vectors_sentence_transformers_gives():
    settings = EmbeddingSettings()
    onnx = build_embeddings(settings, CACHE)
    assert isinstance(onnx, OnnxSentenceEmbeddings)
    reference = build_embeddings(settings)  # sentence-transformers on torch
    article = next((REPO / "corpora" / "articles").glob("*.md")).read_text(encoding="utf-8")
    texts = [article[:800], article[800:1000], "When did Voyager 1 launch?", "x " * 2000]  # the last is truncated
    assert np.abs(np.array(onnx.embed_documents(texts)) - np.array(reference.embed_documents(texts))).max() < 1e-5
    query = "Who paid for the bridge?"
    assert np.abs(np.array(onnx.embed_query(query)) - np.array(reference.embed_query(query))).max() < 1e-5


def test_the_export_is_cached_and_reused(tmp_path: Path):
    first = build_embeddings(EmbeddingSettings(), tmp_path)
    assert isinstance(first, OnnxSentenceEmbeddings)
    exported = first.model_file
    stamp = exported.stat().st_mtime_ns
    second = build_embeddings(EmbeddingSettings(), tmp_path)
    assert second.model_file == exported  # type: ignore[attr-defined]
    assert exported.stat().st_mtime_ns == stamp
    assert not list(exported.parent.glob("*.partial"))
