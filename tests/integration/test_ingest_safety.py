"""Nothing lost in the store: a real `rag-guard ingest` killed with SIGKILL mid-way, then run again, leaves
exactly the corpus's chunks; a second ingest started meanwhile is turned away, not interleaved."""

from __future__ import annotations

import json
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


def test_a_folder_of_hostile_files_ingests_what_it_can_reads_out_the_rest_and_loses_nothing(tmp_path):
    """Zero-byte, truncated and password-protected PDFs, an all-script page, a .docx of junk and a spreadsheet
    beside a readable PDF, HTML page and Word file, and a 200-page PDF: the command names every skipped file
    with its reason, and a file that turns corrupt keeps the chunks it had."""
    from tests.documents import write_docx, write_hostile, write_html, write_pdf

    folder = tmp_path / "ships"
    reasons = write_hostile(folder)
    write_pdf(folder / "cutty_sark.pdf", ["The Cutty Sark was launched at Dumbarton in 1869."])
    write_html(folder / "batavia.html", "The Batavia", [("The wreck", "She struck a reef on 4 June 1629.")])
    write_docx(folder / "endurance.docx", [("The voyage", "Endurance left Plymouth in August 1914.")])
    write_pdf(folder / "logbook.pdf", [f"Day {day}: the wind held from the {WORDS[day % 12]}." for day in range(200)])
    config = tmp_path / "config.yaml"
    config.write_text(f"chroma:\n  persist_directory: {tmp_path / 'chroma'}\n", encoding="utf-8")

    first = run("ingest", "--config", str(config), "--corpus", str(folder), "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["files"] == 4 and set(report["skipped"]) == set(reasons)
    assert all(reasons[name] in why for name, why in report["skipped"].items())
    table = run("ingest", "--config", str(config), "--corpus", str(folder))
    assert table.exit_code == 0 and all(name in table.stdout for name in reasons), table.stdout
    assert "(0 added, 0 removed" in " ".join(table.stdout.split())

    (folder / "cutty_sark.pdf").write_bytes(b"%PDF-1.4 cut")  # corrupt now: its chunks stay
    again = json.loads(run("ingest", "--config", str(config), "--corpus", str(folder), "--json").stdout)
    assert "cutty_sark.pdf" in again["skipped"] and again["removed"] == 0

    nothing = tmp_path / "nothing"
    write_hostile(nothing)
    refused = run("ingest", "--config", str(config), "--corpus", str(nothing))
    assert refused.exit_code == 1
    assert "No usable documents" in refused.output and "locked.pdf" in " ".join(refused.output.split())
