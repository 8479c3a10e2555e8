"""The whole product on the default model: `rag-guard ask` over the bundled articles in a temporary store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag_guard.cli import app

pytestmark = pytest.mark.integration


def ask(config, question: str) -> dict:
    result = CliRunner().invoke(app, ["ask", question, "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_answerable_bundled_question_is_answered_with_a_source(default_config):
    result = ask(default_config, "When was Voyager 2 launched?")
    assert result["decision"] == "answer"
    assert "1977" in result["answer"]
    assert any(s["source"] == "articles/voyager.md" for s in result["sources"])
    assert result["p_sufficient"] >= 0.7
    assert result["message"] is None


def test_off_topic_question_is_never_answered(default_config):
    result = ask(default_config, "Who won the 2014 FIFA World Cup?")
    assert result["decision"] in {"refuse", "clarify"}
    assert result["answer"] is None
    assert result["message"]


def test_reingesting_the_bundled_corpus_changes_nothing(default_config):
    result = CliRunner().invoke(app, ["ingest", "--config", str(default_config)])
    assert result.exit_code == 0, result.output
    assert "0 added, 0 removed" in " ".join(result.output.split())
