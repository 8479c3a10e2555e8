from pathlib import Path

import pytest

from rag_guard.errors import CorpusError
from rag_guard.store.corpus import chunk_id, scan_corpus


def make_corpus(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\n" + "Alpha sentence. " * 80, encoding="utf-8")
    (root / "sub" / "b.txt").write_text("Beta text. " * 10, encoding="utf-8")
    (root / "settings.json").write_text("{}", encoding="utf-8")
    return root


def test_chunk_id_depends_on_folder_source_position_and_text():
    base = chunk_id("/docs", "a.md", 0, "text")
    assert base == chunk_id("/docs", "a.md", 0, "text")
    others = {
        chunk_id("/notes", "a.md", 0, "text"),
        chunk_id("/docs", "b.md", 0, "text"),
        chunk_id("/docs", "a.md", 1, "text"),
        chunk_id("/docs", "a.md", 0, "text!"),
    }
    assert len({base, *others}) == 5


def test_chunks_record_their_folder_however_it_was_named(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    relative = scan_corpus(Path("corpus"), 300, 50)
    absolute = scan_corpus(corpus, 300, 50)
    assert {c.metadata["corpus"] for c in relative.chunks} == {corpus.resolve().as_posix()}
    assert [c.id for c in relative.chunks] == [c.id for c in absolute.chunks]


def test_scanning_twice_gives_the_same_ids(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    first = scan_corpus(corpus, 300, 50)
    second = scan_corpus(corpus, 300, 50)
    assert [c.id for c in first.chunks] == [c.id for c in second.chunks]
    assert len(first.chunks) > 2


def test_chunks_keep_relative_source_and_index(tmp_path):
    scan = scan_corpus(make_corpus(tmp_path / "corpus"), 300, 50)
    sources = {c.metadata["source"] for c in scan.chunks}
    assert sources == {"a.md", "sub/b.txt"}
    indices = [c.metadata["chunk_index"] for c in scan.chunks if c.metadata["source"] == "a.md"]
    assert indices == list(range(len(indices)))


def test_unusable_files_are_skipped_with_a_reason_and_the_rest_kept(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    (corpus / "empty.md").write_text("", encoding="utf-8")
    (corpus / "blank.txt").write_text("  \n\t", encoding="utf-8")
    (corpus / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (corpus / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    scan = scan_corpus(corpus, 300, 50)
    assert set(scan.skipped) == {"empty.md", "blank.txt", "latin1.txt", "binary.md", "settings.json"}
    assert "not a document type ingest reads (.json" in scan.skipped["settings.json"]
    assert "UTF-8" in scan.skipped["latin1.txt"]
    assert "binary" in scan.skipped["binary.md"]
    assert scan.files == 2


def test_missing_corpus_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        scan_corpus(tmp_path / "nowhere", 300, 50)
