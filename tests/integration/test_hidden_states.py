"""Hidden states read from the embedded model's own forward pass (small preset): the verdict does not move,
the state does not depend on what was cached before, and the shipped probe scores it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_core.documents import Document

from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.probe import check_model, load_probe, shipped_probe
from rag_guard.judging.prompts import GUARD_INSTRUCTION, build_messages
from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.models.presets import PRESETS
from rag_guard.pipeline import GuardedRAG
from tests.fakes import FixedRetriever

pytestmark = pytest.mark.integration

DOCS = [Document(page_content="Voyager 2 was launched on 20 August 1977.", metadata={"source": "voyager.md"})]
PROMPT = build_messages("When was Voyager 2 launched?", DOCS, GUARD_INSTRUCTION)
ONE_TOKEN = {"max_tokens": 1, "logprobs": True, "top_logprobs": 20}


def test_reading_hidden_states_leaves_the_verdict_bit_identical(small_model):
    bare = ChatLlamaCpp(model_path=small_model.model_path, n_ctx=small_model.n_ctx, read_hidden_states=False)
    bare.forget_prompt()
    small_model.forget_prompt()
    observed = small_model.invoke(PROMPT, hidden_layers=[6, 14, 23], **ONE_TOKEN)
    plain = bare.invoke(PROMPT, **ONE_TOKEN)
    assert observed.response_metadata["logprobs"] == plain.response_metadata["logprobs"]
    states = observed.response_metadata["hidden_states"]
    assert sorted(states) == [6, 14, 23]
    assert all(len(state) == 896 and np.isfinite(state).all() for state in states.values())
    assert "hidden_states" not in plain.response_metadata


def test_the_state_read_after_a_whole_guarded_answer_equals_a_cold_one(small_model):
    small_model.forget_prompt()
    cold = small_model.invoke(PROMPT, hidden_layers=[14], **ONE_TOKEN).response_metadata["hidden_states"][14]
    answering = SufficiencyGuard(judge=small_model, answer_threshold=0.0, clarify_threshold=0.0)
    rag = GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=answering, answerer=small_model)
    assert rag.invoke("Who built Voyager 2?").decision.value == "answer"
    warm = small_model.invoke(PROMPT, hidden_layers=[14], **ONE_TOKEN)
    assert warm.response_metadata["prompt_tokens_reused"] > 0
    assert warm.response_metadata["hidden_states"][14] == cold


def test_a_layer_the_model_does_not_have_is_a_clear_error(small_model):
    with pytest.raises(ValueError, match=r"hidden_layers \(24,\) must lie in 0\.\.23"):
        small_model.invoke(PROMPT, hidden_layers=[24], **ONE_TOKEN)


def test_the_shipped_small_probe_matches_its_model_and_scores_the_verdicts_state(small_model):
    path = shipped_probe("small")
    assert path is not None
    probe = load_probe(path)
    check_model(probe, path, PRESETS["small"].sha256, "small")
    guard = SufficiencyGuard(judge=small_model, signals=("verdict", "extract", "probe"), probe=probe)
    verdict = guard.invoke({"question": "When was Voyager 2 launched?", "documents": DOCS})
    assert verdict.signals is not None and verdict.signals.probe is not None
    assert 0.0 < verdict.signals.probe < 1.0
    combined = probe.combination.apply(verdict.signals.features())
    assert verdict.p_sufficient == pytest.approx(verdict.signals.capped(combined))


PARAGRAPHS = [
    (
        "The Harwick ferry carries 40 cars and leaves every half hour.",
        "How many cars does the Harwick ferry carry?",
        "What does a ticket on the Harwick ferry cost?",
    ),
    (
        "Mount Orrel is 2,310 metres high and was first climbed in 1861.",
        "How high is Mount Orrel?",
        "Who first skied down Mount Orrel?",
    ),
    (
        "The Lindqvist bakery opens at six and sells rye bread.",
        "What bread does the Lindqvist bakery sell?",
        "Who founded the Lindqvist bakery?",
    ),
    (
        "Tessa Marlow painted the harbour mural in 1998.",
        "Who painted the harbour mural?",
        "How long did the harbour mural take to paint?",
    ),
    (
        "The Kettle river floods each April when the snow melts.",
        "When does the Kettle river flood?",
        "How long is the Kettle river?",
    ),
]


def test_fit_probe_reads_states_in_saved_parts_and_a_second_fit_comes_from_the_file(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rag_guard.cli import app
    from rag_guard.evaluation import evaluate, probe_states

    lines = []
    for index, (context, answerable, unanswerable) in enumerate(PARAGRAPHS):
        for question, label in ((answerable, True), (unanswerable, False)):
            item = {"question": question, "answerable": label, "context": context, "paragraph": f"p{index}"}
            lines.append(json.dumps(item))
    (tmp_path / "q.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "config.yaml").write_text("model:\n  preset: small\n", encoding="utf-8")
    monkeypatch.setattr(evaluate, "SAVE_EVERY", 4)  # 10 questions: written after 4, 8 and 10
    saved = []
    real_save = probe_states.save_features
    monkeypatch.setattr(
        probe_states, "save_features", lambda path, rows: saved.append(len(rows)) or real_save(path, rows)
    )

    def fit(out: str):
        args = ["fit-probe", "--config", str(tmp_path / "config.yaml"), "--questions", str(tmp_path / "q.jsonl")]
        result = CliRunner().invoke(
            app, [*args, "--layers", "10", "--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / out)]
        )
        assert result.exit_code == 0, result.output
        return load_probe(tmp_path / out)

    first = fit("a.json")
    assert saved == [4, 4, 2]
    assert first.layers == [10] and first.n == 10 and first.model_sha256 == PRESETS["small"].sha256
    assert first.calls == ["verdict"]  # the default guard asks no answer start: the probe reads the verdict's state
    rows = probe_states.load_features(tmp_path / "f.npz")
    assert len(rows) == 10
    assert all(set(row.states) == {("verdict", 10), ("extract", 10)} for row in rows)
    assert not np.array_equal(rows[0].states["verdict", 10], rows[0].states["extract", 10])
    second = fit("b.json")
    assert saved == [4, 4, 2]  # nothing judged again
    assert np.array_equal(first.weights, second.weights)
