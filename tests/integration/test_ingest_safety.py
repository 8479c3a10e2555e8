"""Nothing lost in the store: a real `rag-guard ingest` killed with SIGKILL mid-way, then run again, leaves
exactly the corpus's chunks; a second ingest started meanwhile is turned away, not interleaved."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag_guard.config import load_config
from rag_guard.factory import build_embeddings
from rag_guard.store import embedding_label, open_store
from rag_guard.store.corpus import scan_corpus
from tests.integration.helpers import run

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "rag-guard")
WORDS = [
    "harbour",
    "lantern",
    "orchard",
    "meadow",
    "river",
    "ferry",
    "signal",
    "copper",
    "willow",
    "granite",
    "beacon",
    "tide",
]


def write_corpus(directory: Path, files: int = 90) -> None:
    """Distinct text in every chunk, so every chunk gets its own id."""
    directory.mkdir()
    for i in range(files):
        sentences = [
            f"Record {i}.{j} notes that the {WORDS[(i + j) % 12]} near {WORDS[(i * 7 + j) % 12]} "
            f"was measured at {i * 31 + j * 17} units on day {j + 1}."
            for j in range(24)
        ]
        (directory / f"record_{i:03d}.md").write_text(" ".join(sentences), encoding="utf-8")


def stored_rows(chroma_dir: Path) -> int:
    database = chroma_dir / "chroma.sqlite3"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet, or the writer holds the lock
        return 0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    write_corpus(tmp_path / "corpus")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"chroma:\n  persist_directory: {tmp_path / 'chroma'}\n  chunk_size: 300\n  chunk_overlap: 30\n"
        f"demo:\n  corpus_dir: {tmp_path / 'corpus'}\n",
        encoding="utf-8",
    )
    return path


def test_ingest_killed_mid_way_then_rerun_holds_exactly_the_corpus(config: Path):
    settings = load_config(config, env={})
    expected = {chunk.id for chunk in scan_corpus(settings.demo.corpus_dir, 300, 30).chunks}
    assert len(expected) > 500

    process = subprocess.Popen(
        [CLI, "ingest", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 180
    while stored_rows(settings.chroma.persist_directory) < 128:
        assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
        assert time.monotonic() < deadline, "ingest did not store anything in 180 s"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = stored_rows(settings.chroma.persist_directory)
    assert 0 < killed_at < len(expected), "the kill did not land mid-way; make the corpus larger"

    result = run("ingest", "--config", str(config))
    assert result.exit_code == 0, result.output

    store = open_store(
        settings.chroma, build_embeddings(settings.embeddings, settings.cache_dir), embedding_label(settings.embeddings)
    )
    stored = store.get(include=[])["ids"]
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == expected
    assert store.similarity_search("copper willow", k=1)


def test_a_second_ingest_while_one_runs_is_turned_away(config: Path):
    settings = load_config(config, env={})
    first = subprocess.Popen(
        [CLI, "ingest", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 180
        while stored_rows(settings.chroma.persist_directory) == 0:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        second = subprocess.run([CLI, "ingest", "--config", str(config)], capture_output=True, text=True, timeout=180)
        assert second.returncode == 1
        assert "Another ingest is running" in second.stderr
    finally:
        assert first.wait(timeout=300) == 0
    expected = {chunk.id for chunk in scan_corpus(settings.demo.corpus_dir, 300, 30).chunks}
    store = open_store(
        settings.chroma, build_embeddings(settings.embeddings, settings.cache_dir), embedding_label(settings.embeddings)
    )
    assert sorted(store.get(include=[])["ids"]) == sorted(expected)
