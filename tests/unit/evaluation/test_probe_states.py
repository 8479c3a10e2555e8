import numpy as np
import pytest

from rag_guard.config import Settings
from rag_guard.errors import CorpusError
from rag_guard.evaluation.evaluate import EvalRow
from rag_guard.evaluation.probe_states import (
    FeatureRow,
    StateKey,
    complete,
    features_of,
    keep_features,
    load_features,
    question_key,
    save_features,
)
from rag_guard.evaluation.questions import LabelledQuestion
from rag_guard.judging.decision import Decision
from rag_guard.judging.signals import Signals
from rag_guard.models.presets import PRESETS


def row(key: str, states: dict[StateKey, list[float]], extract: float | None = 0.5) -> FeatureRow:
    return FeatureRow(
        key=key,
        answerable=key.startswith("a"),
        group=f"group-{key}",
        source="set/questions.jsonl",
        verdict=0.7,
        extract=extract,
        states={at: np.asarray(state, dtype=np.float32) for at, state in states.items()},
    )


def test_feature_files_round_trip_and_merge_rows_by_key(tmp_path):
    path = tmp_path / "features.npz"
    save_features(path, [row("a1", {("verdict", 17): [1.0, 2.0]}), row("u1", {("verdict", 17): [3, 4]}, extract=None)])
    save_features(path, [row("a2", {("verdict", 17): [5.0, 6.0], ("extract", 17): [7.0, 8.0]})])
    loaded = {r.key: r for r in load_features(path)}
    assert sorted(loaded) == ["a1", "a2", "u1"]
    assert loaded["u1"].extract is None and not loaded["u1"].answerable
    assert loaded["a2"].states[("extract", 17)].tolist() == [7.0, 8.0]
    assert loaded["a2"].by_call["extract"][17].tolist() == [7.0, 8.0]
    assert ("extract", 17) not in loaded["a1"].states  # a state a row was not read at stays absent
    assert sorted(complete(loaded.values(), [("verdict", 17), ("extract", 17)])) == ["a2"]


def test_a_features_file_written_before_the_answer_starts_states_loads_as_verdict_states(tmp_path):
    path = tmp_path / "old.npz"
    np.savez_compressed(
        path,
        key=np.array(["a1"]),
        answerable=np.array([True]),
        group=np.array(["g"]),
        source=np.array(["set/q.jsonl"]),
        verdict=np.array([0.7]),
        extract=np.array([0.4]),
        layer_17=np.array([[1.0, 2.0]], dtype=np.float32),
    )
    (loaded,) = load_features(path)
    assert list(loaded.states) == [("verdict", 17)]
    assert loaded.states[("verdict", 17)].tolist() == [1.0, 2.0]


def test_a_question_is_keyed_by_the_model_its_prompts_and_the_passage_it_was_judged_on(tmp_path):
    given = LabelledQuestion(question="Who?", answerable=True, context="Ann did.")
    other = LabelledQuestion(question="Who?", answerable=True, context="Bob did.")
    retrieved = LabelledQuestion(question="Who?", answerable=True)
    keys = {
        question_key("m1", "p1", given, None),
        question_key("m1", "p1", other, None),
        question_key("m1", "p1", retrieved, tmp_path / "corpus"),
        question_key("m1", "p1", retrieved, tmp_path / "other"),
        question_key("m2", "p1", given, None),
        question_key("m1", "p2", given, None),
    }
    assert len(keys) == 6
    assert question_key("m1", "p1", given, None) == question_key("m1", "p1", given, None)


def test_a_question_file_may_name_its_group_in_three_ways():
    assert LabelledQuestion(question="q", answerable=True, group="g").group == "g"
    squad = LabelledQuestion(question="q", answerable=True, article="Spectre", paragraph_index=3)
    assert squad.group == "Spectre#3"
    assert LabelledQuestion(question="q", answerable=True, paragraph="normans-07.md").group == "normans-07.md"
    assert LabelledQuestion(question="q", answerable=True).group is None


def test_an_evaluation_keeps_each_batch_s_states_as_it_is_judged_and_skips_rows_without_them(tmp_path):
    path = tmp_path / "suite.npz"
    settings = Settings()
    keep = keep_features(path, settings, tmp_path / "corpus", "squad2-fit/Oxygen")

    read = Signals(verdict=0.8, extract=0.6)

    def judged(question: str, states: dict | None, signals: Signals | None = read):
        evaluated = EvalRow(
            question=question,
            answerable=question.startswith("a"),
            kind=None,
            decision=Decision.ANSWER,
            p_sufficient=0.8,
            signals=signals,
            reason="",
            guard_s=0.1,
            sources=["oxygen.md"],
            group="Oxygen",
        )
        evaluated.hidden_states = states
        return LabelledQuestion(question=question, answerable=evaluated.answerable), evaluated

    first = [judged("a1?", {"verdict": {17: [1.0, 2.0]}}), judged("u1?", None), judged("u2?", {}, None)]
    keep([q for q, _ in first], [r for _, r in first])
    second = [judged("u3?", {"verdict": {17: [3.0, 4.0]}, "extract": {17: [5.0, 6.0]}})]
    keep([q for q, _ in second], [r for _, r in second])

    loaded = {row.source + row.group + str(row.answerable): row for row in load_features(path)}
    assert len(loaded) == 2  # the rows that read no states are not features
    unanswerable = loaded["squad2-fit/OxygenOxygenFalse"]
    assert unanswerable.states[("extract", 17)].tolist() == [5.0, 6.0] and unanswerable.verdict == 0.8
    assert loaded["squad2-fit/OxygenOxygenTrue"].extract == 0.6
    assert {row.model for row in loaded.values()} == {PRESETS["default"].sha256}  # who read them is kept


def test_a_fit_reads_only_the_states_its_own_model_read(tmp_path):
    mixed, foreign = tmp_path / "mixed.npz", tmp_path / "foreign.npz"
    own = [row("a1", {("verdict", 17): [1.0, 2.0]}), row("u1", {("verdict", 17): [3.0, 4.0]})]
    own[0].model = PRESETS["default"].sha256  # the second is a row of a file too old to say who read it
    other = row("a2", {("verdict", 17): [5.0, 6.0]})
    other.model = "0" * 64
    save_features(mixed, [*own, other])
    assert sorted(r.key for r in features_of(mixed, Settings())) == ["a1", "u1"]
    save_features(foreign, [other])
    with pytest.raises(CorpusError, match="read by another model"):
        features_of(foreign, Settings())
