"""What `ChromaRetriever` returns from a real on-disk Chroma, in both search modes."""

import shutil
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from rag_guard.store import ChromaRetriever, ChromaSettings, ingest, open_store


@pytest.mark.parametrize("search", ["dense", "hybrid"])
def test_a_folder_ingested_twice_fills_the_k_places_with_distinct_passages(tmp_path: Path, search: str):
    notes = tmp_path / "notes"
    notes.mkdir()
    for ship in ["Vasa", "Mary Rose", "Batavia", "Kronan", "Mars"]:
        (notes / f"{ship}.md").write_text(f"The {ship} was a warship that sank.", encoding="utf-8")
    shutil.copytree(notes, tmp_path / "copy")
    settings = ChromaSettings(persist_directory=tmp_path / "chroma")
    store = open_store(settings, DeterministicFakeEmbedding(size=16), create=True)
    ingest(store, notes, settings)
    ingest(store, tmp_path / "copy", settings)

    found = ChromaRetriever(store=store, k=4, search=search).invoke("When did the warship sink?")

    assert len(found) == 4 and len({doc.page_content for doc in found}) == 4


@pytest.mark.parametrize("search", ["dense", "hybrid"])
async def test_chunks_left_out_give_their_places_to_the_next_ones(tmp_path: Path, search: str):
    notes = tmp_path / "notes"
    notes.mkdir()
    for guns, ship in enumerate(["Vasa", "Mary Rose", "Batavia", "Kronan", "Mars", "Victory"], start=20):
        (notes / f"{ship}.md").write_text(f"The {ship} was a warship with {guns} guns.", encoding="utf-8")
    settings = ChromaSettings(persist_directory=tmp_path / "chroma")
    store = open_store(settings, DeterministicFakeEmbedding(size=16), create=True)
    ingest(store, notes, settings)
    retriever = ChromaRetriever(store=store, k=6, search=search)  # every chunk, but for those left out

    def about_the_vasa(doc: Document) -> bool:
        return "Vasa" in doc.page_content

    found = await retriever.ainvoke("How many guns did the Vasa carry?", leave_out=about_the_vasa)

    assert len(found) == 5 and not any(about_the_vasa(doc) for doc in found)
