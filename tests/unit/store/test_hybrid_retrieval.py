"""Hybrid retrieval (`chroma.search: hybrid`) against a real on-disk Chroma.

The embedding is a deterministic fake, so the dense ranking is arbitrary: what these tests pin down is what
the keyword ranking adds to it.
"""

from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from rag_guard.store import ChromaRetriever, ChromaSettings, ingest, open_store
from rag_guard.store import chroma as chroma_module

FILLER = {
    f"topic{i}.md": f"Paragraph {i} talks about rivers, weather and farming in general terms. " * 6 for i in range(8)
}


@pytest.fixture
def store(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in {**FILLER, "axolotl.md": "Wild axolotls live only in the canals of Xochimilco."}.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = ChromaSettings(persist_directory=tmp_path / "chroma", chunk_size=600, chunk_overlap=0)
    store = open_store(settings, DeterministicFakeEmbedding(size=16), create=True)
    ingest(store, corpus, settings)
    return store, corpus, settings


def sources(docs) -> list[str]:
    return [doc.metadata["source"] for doc in docs]


def test_a_rare_word_of_the_question_brings_its_passage_into_the_top_k(store):
    store, _, _ = store
    question = "Where do axolotls live in Xochimilco?"
    assert sources(ChromaRetriever(store=store, k=1, search="hybrid").invoke(question)) == ["axolotl.md"]


def test_a_passage_only_the_keyword_search_found_has_its_cosine_score_like_the_others(store, monkeypatch):
    store, _, _ = store
    question = "Where do axolotls live in Xochimilco?"
    everything = ChromaRetriever(store=store, k=20).invoke(question)
    dense_score = next(doc.metadata["score"] for doc in everything if doc.metadata["source"] == "axolotl.md")
    monkeypatch.setattr(chroma_module, "HYBRID_DEPTH", 1)
    ranked_by_dense = sources(everything)
    assert ranked_by_dense.index("axolotl.md") > 0  # the dense search at depth 1 does not reach it
    docs = ChromaRetriever(store=store, k=2, search="hybrid").invoke(question)
    found = next(doc for doc in docs if doc.metadata["source"] == "axolotl.md")
    assert found.metadata["score"] == pytest.approx(dense_score, abs=1e-5)
    assert found.page_content.startswith("Wild axolotls") and found.id


def test_the_keyword_index_follows_a_new_ingest_without_a_new_retriever(store):
    store, corpus, settings = store
    retriever = ChromaRetriever(store=store, k=1, search="hybrid")
    question = "What did the narwhal eat?"
    assert "narwhal.md" not in sources(retriever.invoke(question))
    (corpus / "narwhal.md").write_text("The narwhal ate Arctic cod and squid.", encoding="utf-8")
    ingest(store, corpus, settings)
    assert sources(retriever.invoke(question)) == ["narwhal.md"]


def test_a_question_sharing_no_word_with_the_passages_gets_the_dense_ranking(store):
    store, _, _ = store
    question = "Qwertyuiop zxcvbnm?"
    dense = ChromaRetriever(store=store, k=3).invoke(question)
    hybrid = ChromaRetriever(store=store, k=3, search="hybrid").invoke(question)
    assert [doc.id for doc in hybrid] == [doc.id for doc in dense]


def test_an_empty_collection_gives_no_passages_in_either_mode(tmp_path):
    settings = ChromaSettings(persist_directory=tmp_path / "chroma")
    empty = open_store(settings, DeterministicFakeEmbedding(size=16), create=True)
    for search in ("dense", "hybrid"):
        assert ChromaRetriever(store=empty, k=2, search=search).invoke("Anything?") == []
