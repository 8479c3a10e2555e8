"""What the user reads is true to the passages, on the default model: the bundled articles, and two articles
of our own whose questions once got self-contradicting clarifying messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_guard.reply.grounding import check_grounding
from tests.integration.helpers import REPO, ask_json, run

pytestmark = pytest.mark.integration


def test_the_honeybee_question_gets_no_invented_number(default_config):
    """The article says "well over a thousand eggs a day"; the model has written "2000"."""
    result = ask_json(default_config, "How many eggs a day can a honeybee queen lay in spring?")
    shown = result["answer"] or result["message"]
    assert "2000" not in shown and "2,000" not in shown
    if result["answer"] is not None:
        articles = [(REPO / "corpora" / source["source"]).read_text(encoding="utf-8") for source in result["sources"]]
        assert check_grounding(result["answer"], articles).passed
    else:
        assert result["decision"] == "clarify" and "thousand" in shown


@pytest.fixture(scope="module")
def own_articles_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's config over tests/data/own_articles, in a store of its own."""
    root = tmp_path_factory.mktemp("own")
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(text.replace("persist_directory: .rag_guard/chroma", f"persist_directory: {root}"))
    result = run("ingest", "--config", str(config), "--corpus", str(REPO / "tests/data/own_articles"))
    assert result.exit_code == 0, result.output
    return config


@pytest.mark.parametrize("question", ["Where do wild axolotls live?", "When was the World Cube Association founded?"])
def test_a_reply_never_calls_the_whole_question_or_a_rewording_a_part(own_articles_config, question):
    result = ask_json(own_articles_config, question)
    if result["decision"] == "answer":  # then the answer itself was held to the grounding check
        assert result["answer_check"]["passed"]
        return
    message = result["message"]
    claimed = 'do not answer this part of your question: "'
    if claimed in message:
        part = message.split(claimed, 1)[1].split('"', 1)[0].rstrip("?").lower()
        assert part in question.lower() and part != question.rstrip("?").lower()


@pytest.mark.parametrize(
    "question",
    [
        "When was Voyager 2 launched?",
        "Who decoded the honeybee waggle dance?",
        "How long does a honeybee worker live in summer?",
    ],
)
def test_an_answer_neither_echoes_the_question_nor_pastes_a_source_note(default_config, question):
    result = ask_json(default_config, question)
    assert result["decision"] == "answer", result["message"]
    answer = result["answer"]
    assert not answer.lower().startswith(question.lower().rstrip("?"))
    assert "source:" not in answer.lower() and "question:" not in answer.lower()


def test_a_definition_is_answered_with_its_sentence_not_with_the_term_asked_about(default_config):
    """The model's few words for "What is oven spring?" are "oven spring": the question's own words."""
    result = ask_json(default_config, "What is oven spring?")
    assert result["decision"] == "answer", result["message"]
    assert not result["answer"].lower().startswith(("oven spring", '"oven spring'))
    assert "trapped gas expands" in result["answer"] and result["answer"].endswith("[1]")


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        (
            "Who invented the safety bicycle, and how much did a Rover cost in 1885?",
            "How much did a Rover cost in 1885?",
        ),
        (
            "What is the ideal hydration for sourdough, and what temperature should the oven be set to?",
            "What temperature should the oven be set to?",
        ),
    ],
)
def test_a_two_part_question_with_one_part_uncovered_is_asked_about_that_part(default_config, question, missing):
    """The whole question's verdict passed both (0.79, 0.80): it leaned on the part the article answers."""
    result = ask_json(default_config, question)
    assert result["decision"] == "clarify", result["answer"]
    assert result["verdict"]["parts"][missing] < result["verdict"]["raw_p"]
    assert f'do not answer this part of your question: "{missing}"' in result["message"]
