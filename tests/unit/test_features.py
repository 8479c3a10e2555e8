import numpy as np

from rag_guard.features import FeatureRow, complete, load_features, question_key, save_features
from rag_guard.questions import LabelledQuestion


def row(key: str, layers: dict[int, list[float]], extract: float | None = 0.5) -> FeatureRow:
    return FeatureRow(
        key=key,
        answerable=key.startswith("a"),
        group=f"group-{key}",
        source="set/questions.jsonl",
        verdict=0.7,
        extract=extract,
        states={layer: np.asarray(state, dtype=np.float32) for layer, state in layers.items()},
    )


def test_feature_files_round_trip_and_merge_rows_by_key(tmp_path):
    path = tmp_path / "features.npz"
    save_features(path, [row("a1", {17: [1.0, 2.0]}), row("u1", {17: [3.0, 4.0]}, extract=None)])
    save_features(path, [row("a2", {17: [5.0, 6.0], 20: [7.0, 8.0]})])
    loaded = {r.key: r for r in load_features(path)}
    assert sorted(loaded) == ["a1", "a2", "u1"]
    assert loaded["u1"].extract is None and not loaded["u1"].answerable
    assert loaded["a2"].states[20].tolist() == [7.0, 8.0]
    assert 20 not in loaded["a1"].states  # a layer a row was not read at stays absent
    assert sorted(complete(loaded.values(), [17, 20])) == ["a2"]


def test_a_question_is_keyed_by_the_model_and_the_passage_it_was_judged_on(tmp_path):
    given = LabelledQuestion(question="Who?", answerable=True, context="Ann did.")
    other = LabelledQuestion(question="Who?", answerable=True, context="Bob did.")
    retrieved = LabelledQuestion(question="Who?", answerable=True)
    keys = {
        question_key("m1", given, None),
        question_key("m1", other, None),
        question_key("m1", retrieved, tmp_path / "corpus"),
        question_key("m1", retrieved, tmp_path / "other"),
        question_key("m2", given, None),
    }
    assert len(keys) == 5


def test_a_question_file_may_name_its_group_in_three_ways():
    assert LabelledQuestion(question="q", answerable=True, group="g").group == "g"
    squad = LabelledQuestion(question="q", answerable=True, article="Spectre", paragraph_index=3)
    assert squad.group == "Spectre#3"
    assert LabelledQuestion(question="q", answerable=True, paragraph="normans-07.md").group == "normans-07.md"
    assert LabelledQuestion(question="q", answerable=True).group is None
