"""The whole product on the default model: `rag-guard ask` over the bundled articles in a temporary store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag_guard.judging.signals import Signals
from tests.integration.helpers import ANSWER_KEYS, REPO, ask_json, run

CORPORA = Path(__file__).resolve().parents[2] / "corpora"

pytestmark = pytest.mark.integration


def test_ask_on_a_store_without_the_collection_says_so_although_the_model_was_loading(tmp_path: Path):
    """llama.cpp silences the process's stdout and stderr while a GGUF loads: an error found meanwhile (the
    store opens faster than the model loads) must still reach the user. A new process, so the model loads."""
    config = tmp_path / "config.yaml"
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("persist_directory: .rag_guard/chroma", f"persist_directory: {tmp_path}"))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rag-guard"), "ask", "--config", str(config), "Who built the bridge?"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RAG_GUARD_MODEL__PRESET": "small"},
    )
    said = " ".join(done.stderr.split())
    assert done.returncode == 1
    assert "'rag_guard' does not exist" in said and "it holds none yet" in said and "rag-guard ingest" in said


def test_answerable_bundled_question_is_answered_with_a_source(default_config):
    result = ask_json(default_config, "When was Voyager 2 launched?")
    assert set(result) == ANSWER_KEYS
    assert result["decision"] == "answer"
    assert "1977" in result["answer"]
    assert any(s["source"] == "articles/voyager.md" for s in result["sources"])
    assert result["p_sufficient"] >= 0.7
    assert result["message"] is None


def test_off_topic_question_is_never_answered(default_config):
    result = ask_json(default_config, "Who won the 2014 FIFA World Cup?")
    assert result["decision"] in {"refuse", "clarify"}
    assert result["answer"] is None
    assert result["message"]


def test_reingesting_the_bundled_corpus_changes_nothing(default_config):
    result = run("ingest", "--config", str(default_config))
    assert result.exit_code == 0, result.output
    assert "0 added, 0 removed" in " ".join(result.output.split())


def test_the_answer_start_is_sure_of_a_stated_name_and_absent_for_an_off_topic_question(default_config):
    with_it = {"RAG_GUARD_GUARD__SIGNALS": "[verdict, extract]"}  # not a default signal: asked for
    stated = ask_json(default_config, "Who decoded the honeybee waggle dance?", env=with_it)["verdict"]
    off_topic = ask_json(default_config, "Who won the 2014 FIFA World Cup?", env=with_it)["verdict"]
    assert stated["signals"]["extract"] > 0.5  # "Karl", in one spelling or another
    assert off_topic["signals"]["extract"] < 0.1  # mostly "unanswerable"
    assert off_topic["p_sufficient"] < off_topic["raw_p"]  # and it discounts the verdict


def test_the_shipped_probe_switched_on_is_sure_of_a_stated_fact_and_turns_down_a_near_miss(default_config):
    probed = {"RAG_GUARD_GUARD__PROBE": "auto"}  # not in the default: the signals it was fitted with come along
    stated = ask_json(default_config, "When was Voyager 2 launched?", env=probed)["verdict"]
    question = "What is the ideal hydration for sourdough, and what temperature should the oven be set to?"
    near_miss = ask_json(default_config, question, env=probed)
    verdict = near_miss["verdict"]
    assert stated["signals"]["extract"] is not None and stated["signals"]["probe"] > 0.9
    assert verdict["signals"]["probe"] < 0.2  # the articles give no oven temperature
    assert Signals.model_validate(verdict["signals"]).combined() > verdict["p_sufficient"]  # lowered by the probe
    assert near_miss["decision"] != "answer"


@pytest.mark.parametrize(
    ("question", "missing", "absent"),
    [
        ("When was Voyager 1 launched, and how much did the mission cost?", "mission cost", ("$", "dollar", "million")),
        (
            "How many eggs does a queen lay per day, and how many drones does a colony raise each year?",
            "drones per year",
            (),
        ),
    ],
)
def test_a_partly_covered_question_gets_a_message_naming_what_is_missing_and_quoting_only_the_passages(
    default_config, question, missing, absent
):
    from rag_guard.evaluation.answer_scoring import names

    result = ask_json(default_config, question)
    assert result["decision"] == "clarify" and result["answer"] is None
    message = result["message"]
    first = message.splitlines()[0]
    if "do not answer this part" in first:  # the model named a real part of the question
        assert names(first, missing) and question.rstrip("?") not in first, message
    else:  # it named none: the message shows what the passages say and asks, claiming no part is unanswered
        assert "Is that what you mean?" in message, message
    quoted = message.split('): "', 1)[1].split('"\n', 1)[0].removesuffix(" \u2026")
    label = int(re.search(r"\[(\d+)\] \([^)]*\): \"", message)[1])
    article = (CORPORA / result["sources"][label - 1]["source"]).read_text(encoding="utf-8")
    assert quoted in " ".join(article.split()), message  # its one statement is a sentence of that passage
    assert not any(word in message.lower() for word in absent)
