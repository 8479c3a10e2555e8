"""Ingest against a real on-disk Chroma, with a deterministic fake embedding so no model is needed."""

from pathlib import Path

import pytest
from filelock import FileLock
from langchain_core.embeddings import DeterministicFakeEmbedding

from rag_guard.errors import CorpusError, StoreBusyError
from rag_guard.store import ChromaRetriever, ChromaSettings, collection_summaries, delete_collection, ingest, open_store
from rag_guard.store.chroma import INGEST_LOCK


@pytest.fixture
def setup(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.md").write_text("Honeybees dance to share where flowers are. " * 20, encoding="utf-8")
    (corpus / "two.md").write_text("Tides follow the Moon around the Earth. " * 20, encoding="utf-8")
    settings = ChromaSettings(persist_directory=tmp_path / "chroma", chunk_size=300, chunk_overlap=30)
    store = open_store(settings, DeterministicFakeEmbedding(size=16), create=True)
    return corpus, settings, store


def ids(store):
    return sorted(store.get(include=[])["ids"])


def test_reingesting_unchanged_files_adds_nothing(setup):
    corpus, settings, store = setup
    first = ingest(store, corpus, settings)
    before = ids(store)
    second = ingest(store, corpus, settings)
    assert first.added == first.chunks == len(before)
    assert (second.added, second.removed, second.unchanged) == (0, 0, first.chunks)
    assert ids(store) == before


def test_edited_file_replaces_its_chunks_and_deleted_file_disappears(setup):
    corpus, settings, store = setup
    ingest(store, corpus, settings)
    (corpus / "one.md").write_text("Honeybees now do something else entirely. " * 5, encoding="utf-8")
    (corpus / "two.md").unlink()
    report = ingest(store, corpus, settings)
    remaining = store.get(include=["metadatas", "documents"])
    assert {m["source"] for m in remaining["metadatas"]} == {"one.md"}
    assert all("something else" in d for d in remaining["documents"])
    assert report.removed > 0
    assert len(remaining["ids"]) == report.chunks


def test_the_store_persists_on_disk(setup):
    corpus, settings, store = setup
    ingest(store, corpus, settings)
    reopened = open_store(settings, DeterministicFakeEmbedding(size=16))
    assert ids(reopened) == ids(store)


def test_retriever_returns_k_chunks_with_source_and_score(setup):
    corpus, settings, store = setup
    ingest(store, corpus, settings)
    docs = ChromaRetriever(store=store, k=2).invoke("Honeybees dance to share where flowers are.")
    assert len(docs) == 2
    assert all({"source", "chunk_index", "score"} <= d.metadata.keys() for d in docs)


def test_a_corpus_with_nothing_usable_is_an_error_and_leaves_the_store_alone(setup, tmp_path):
    corpus, settings, store = setup
    ingest(store, corpus, settings)
    before = ids(store)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.md").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="No usable"):
        ingest(store, empty, settings)
    assert ids(store) == before


def test_a_store_filled_by_other_embeddings_is_refused_for_questions_and_refilled_by_ingest(setup):
    corpus, settings, _ = setup
    first = open_store(settings, DeterministicFakeEmbedding(size=16), "fake:a", create=True)
    ingest(first, corpus, settings)

    with pytest.raises(CorpusError) as info:
        open_store(settings, DeterministicFakeEmbedding(size=8), "fake:b")
    assert "holds vectors from fake:a" in str(info.value)
    assert "rag-guard ingest" in str(info.value)

    refilled = open_store(settings, DeterministicFakeEmbedding(size=8), "fake:b", replace_mismatched=True)
    report = ingest(refilled, corpus, settings)
    assert report.added == report.chunks
    assert open_store(settings, DeterministicFakeEmbedding(size=8), "fake:b").similarity_search("tides", k=1)


def test_a_second_ingest_into_the_same_directory_is_told_another_is_running(setup):
    corpus, settings, store = setup
    held = FileLock(settings.persist_directory / INGEST_LOCK)
    with held, pytest.raises(StoreBusyError, match="Another ingest is running"):
        ingest(store, corpus, settings)
    assert ids(store) == []
    assert ingest(store, corpus, settings).added > 0


def test_a_second_folder_in_the_same_collection_removes_none_of_the_first_folder_s_chunks(setup, tmp_path):
    corpus, settings, store = setup
    ingest(store, corpus, settings)
    first = ids(store)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "one.md").write_text("My own notes on axolotls and their lakes. " * 10, encoding="utf-8")
    report = ingest(store, notes, settings)
    assert report.removed == 0
    assert set(first) < set(ids(store))
    (notes / "one.md").write_text("Edited notes on axolotls. " * 10, encoding="utf-8")
    assert ingest(store, notes, settings).removed > 0
    assert set(first) < set(ids(store))
    assert ingest(store, corpus, settings).removed == 0


def test_a_chunk_from_before_folders_were_recorded_belongs_to_the_folder_holding_its_file(setup, tmp_path):
    corpus, settings, store = setup
    store.add_texts(["old chunk of one"], metadatas=[{"source": "one.md"}], ids=["legacy-one"])
    store.add_texts(["old chunk of elsewhere"], metadatas=[{"source": "elsewhere.md"}], ids=["legacy-other"])
    report = ingest(store, corpus, settings)
    assert report.removed == 1
    assert "legacy-other" in ids(store) and "legacy-one" not in ids(store)


def test_collections_are_listed_with_chunks_by_folder_and_file(setup, tmp_path):
    corpus, settings, store = setup
    report = ingest(store, corpus, settings)
    other = settings.model_copy(update={"collection": "notes"})
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n.md").write_text("A short note. " * 5, encoding="utf-8")
    ingest(open_store(other, DeterministicFakeEmbedding(size=16), create=True), notes, other)
    summaries = {s.name: s for s in collection_summaries(settings)}
    assert set(summaries) == {settings.collection, "notes"}
    assert summaries[settings.collection].chunks == report.chunks
    folder = corpus.resolve().as_posix()
    assert set(summaries[settings.collection].sources[folder]) == {"one.md", "two.md"}
    assert summaries["notes"].sources == {notes.resolve().as_posix(): {"n.md": 1}}


def test_reading_a_collection_that_does_not_exist_names_those_that_do_and_creates_nothing(setup):
    corpus, settings, store = setup
    ingest(store, corpus, settings)
    absent = settings.model_copy(update={"collection": "doesnotexist"})
    with pytest.raises(CorpusError, match=r"'doesnotexist' does not exist .*it holds 'rag_guard'"):
        open_store(absent, DeterministicFakeEmbedding(size=16))
    assert [summary.name for summary in collection_summaries(settings)] == [settings.collection]


def test_a_deleted_collection_is_gone_and_the_others_stay(setup, tmp_path):
    corpus, settings, store = setup
    ingest(store, corpus, settings)
    notes = settings.model_copy(update={"collection": "notes"})
    ingest(open_store(notes, DeterministicFakeEmbedding(size=16), create=True), corpus, notes)
    assert delete_collection(notes) == len(ids(store))
    assert [summary.name for summary in collection_summaries(settings)] == [settings.collection]
    with pytest.raises(CorpusError, match="'notes' does not exist"):
        delete_collection(notes)


def test_a_first_ingest_that_reads_nothing_leaves_no_empty_collection(tmp_path):
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "table.xlsx").write_bytes(b"PK a spreadsheet")
    settings = ChromaSettings(persist_directory=tmp_path / "chroma", collection="ships")
    with pytest.raises(CorpusError, match=r"table\.xlsx: not a document type"):
        ingest(open_store(settings, DeterministicFakeEmbedding(size=16), create=True), nothing, settings)
    assert collection_summaries(settings) == []
