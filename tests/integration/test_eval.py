"""`rag-guard eval` end to end on the small model: a temporary store, the JSON figures, the demo store untouched."""

from __future__ import annotations

import json

import chromadb
import pytest

from rag_guard.config import load_config
from tests.integration.helpers import REPO, run

pytestmark = pytest.mark.integration

KEYS = {
    "n",
    "auroc",
    "ece",
    "answered_precision",
    "coverage",
    "unanswerable_refusal_rate",
    "answer_threshold",
    "clarify_threshold",
    "guard_latency_s_mean",
}
SMALL = {"RAG_GUARD_MODEL__PRESET": "small"}


def eval_json(config, env) -> dict:
    result = run(
        "eval",
        "--corpus",
        str(REPO / "corpora"),
        "--questions",
        str(REPO / "corpora/questions.jsonl"),
        "--limit",
        "6",
        "--json",
        "--config",
        str(config),
        env=env,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_eval_prints_the_figures_for_a_stratified_sample(default_config, tmp_path):
    figures = eval_json(default_config, {**SMALL, "RAG_GUARD_CHROMA__PERSIST_DIRECTORY": str(tmp_path / "demo")})
    assert set(figures) >= KEYS
    assert figures["n"] == 6
    assert 0 <= figures["auroc"] <= 1
    assert {row["answerable"] for row in figures["rows"]} == {True, False}
    assert all(row["sources"] for row in figures["rows"])
    assert not (tmp_path / "demo").exists()  # the configured store was never opened


def test_eval_against_a_chroma_server_leaves_no_collection_behind(default_config, chroma_http_env):
    figures = eval_json(default_config, {**SMALL, **chroma_http_env})
    assert figures["n"] == 6
    client = chromadb.HttpClient(
        host="127.0.0.1",
        port=int(chroma_http_env["RAG_GUARD_CHROMA__PORT"]),
        settings=chromadb.Settings(anonymized_telemetry=False),
    )
    assert [c.name for c in client.list_collections()] == ["rag_guard"]


def test_eval_names_a_missing_corpus(default_config):
    result = run(
        "eval",
        "--corpus",
        "/no/such/dir",
        "--questions",
        str(REPO / "corpora/questions.jsonl"),
        "--config",
        str(default_config),
    )
    assert result.exit_code == 1
    assert "/no/such/dir" in result.output


def test_calibrate_write_stores_a_calibration_that_eval_then_applies(default_config, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(default_config.read_text(encoding="utf-8"), encoding="utf-8")
    args = ["--corpus", str(REPO / "corpora"), "--questions", str(REPO / "corpora/questions.jsonl"), "--limit", "20"]
    result = run("calibrate", *args, "--target-precision", "0.9", "--write", "--config", str(config), env=SMALL)
    assert result.exit_code == 0, result.output
    assert "expected answered precision" in result.output
    calibration = load_config(config, env={}).guard.calibration
    assert calibration is not None and calibration.fitted_on == "questions.jsonl"
    assert "# passages retrieved per question" in config.read_text(encoding="utf-8")  # comments kept
    figures = eval_json(config, SMALL)
    assert all(row["p_sufficient"] is None or 0 <= row["p_sufficient"] <= 1 for row in figures["rows"])


def test_eval_report_writes_plots_and_a_page(default_config, tmp_path):
    result = run(
        "eval",
        "--corpus",
        str(REPO / "corpora"),
        "--questions",
        str(REPO / "corpora/questions.jsonl"),
        "--limit",
        "4",
        "--report",
        str(tmp_path / "report"),
        "--config",
        str(default_config),
        # every question answered: the small model's discounted scores sit low, and the page must show answers
        env={**SMALL, "RAG_GUARD_GUARD__ANSWER_THRESHOLD": "0", "RAG_GUARD_GUARD__CLARIFY_THRESHOLD": "0"},
    )
    assert result.exit_code == 0, result.output
    names = {path.name for path in (tmp_path / "report").iterdir()}
    assert names == {"index.html", "reliability.png", "risk_coverage.png", "score_histogram.png"}
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "perplexity" in page and "hsl(" in page  # answered questions show their coloured tokens
