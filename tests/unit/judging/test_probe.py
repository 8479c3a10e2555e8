import json
import math

import numpy as np
import pytest

from rag_guard.errors import ConfigError, CorpusError
from rag_guard.evaluation.metrics import auroc
from rag_guard.evaluation.probe_maths import Reading, choose, combine, combined_signals, fit_probe, grouped_splits
from rag_guard.judging.calibration import Calibration
from rag_guard.judging.probe import Probe, ProbeError, check_model, check_prompt, load_probe
from rag_guard.judging.prompts import GUARD_INSTRUCTION, prompt_fingerprint
from rag_guard.judging.signals import sigmoid

SHA = "a" * 64
COMBINATION = Calibration(weights={"verdict": 1.0, "extract": 0.2, "probe": 0.8}, bias=-0.5)


def a_probe(**changes) -> Probe:
    fields = {
        "layers": [3],
        "mean": np.array([1.0, 0.0, 0.0, 2.0], dtype=np.float32),
        "scale": np.array([2.0, 1.0, 1.0, 0.5], dtype=np.float32),
        "weights": np.array([1.0, -1.0, 0.0, 0.5], dtype=np.float32),
        "bias": 0.25,
        "model_sha256": SHA,
        "model_name": "test model",
        "c": 0.01,
        "fitted_on": ["unit.jsonl (40)"],
        "n": 40,
        "heldout_auroc": 0.9,
        "combination": COMBINATION,
    }
    return Probe(**{**fields, **changes})


def test_the_probe_scores_the_standardised_state_with_its_weights():
    state = [3.0, 1.0, 7.0, 2.5]
    z = ((3 - 1) / 2) * 1.0 + (1 / 1) * -1.0 + 0.0 + ((2.5 - 2) / 0.5) * 0.5 + 0.25
    assert a_probe().logit({"verdict": {3: state}}) == pytest.approx(z)
    assert a_probe().probability({"verdict": {"3": state}}) == pytest.approx(sigmoid(z))  # JSON keys are text


def test_a_probe_on_two_calls_reads_the_verdicts_state_then_the_answer_starts():
    probe = a_probe(calls=["verdict", "extract"])
    assert probe.width == 2
    verdict, extract = [3.0, 1.0], [7.0, 2.5]
    z = ((3 - 1) / 2) * 1.0 + (1 / 1) * -1.0 + 0.0 + ((2.5 - 2) / 0.5) * 0.5 + 0.25
    assert probe.logit({"verdict": {3: verdict}, "extract": {3: extract}}) == pytest.approx(z)
    assert probe.logit({"verdict": {3: extract}, "extract": {3: verdict}}) != pytest.approx(z)
    with pytest.raises(ProbeError, match="no hidden state for layer 3 in the extract call"):
        probe.logit({"verdict": {3: verdict}})
    with pytest.raises(ValueError, match="twice"):
        a_probe(calls=["verdict", "verdict"])


def test_a_missing_or_misshapen_state_is_an_error_the_guard_can_refuse_on():
    with pytest.raises(ProbeError, match="no hidden state for layer 3 in the verdict call"):
        a_probe().logit({"verdict": {17: [0.0] * 4}})
    with pytest.raises(ProbeError, match="shape"):
        a_probe().logit({"verdict": {3: [0.0] * 5}})


def test_a_probe_file_round_trips_exactly_and_stays_small(tmp_path):
    rng = np.random.default_rng(0)
    width = 1536
    probe = a_probe(mean=rng.normal(size=width), scale=rng.uniform(0.5, 2, size=width), weights=rng.normal(size=width))
    path = tmp_path / "probe.json"
    probe.save(path)
    loaded = load_probe(path)
    state = rng.normal(size=width)
    assert loaded.logit({"verdict": {3: state}}) == probe.logit({"verdict": {3: state}})
    assert loaded.combination == COMBINATION
    assert path.stat().st_size < 30_000  # base64 float32: ~8 KB per array of 1536
    assert json.loads(path.read_text())["model_sha256"] == SHA


def test_a_broken_probe_file_says_what_is_wrong_and_how_to_get_a_good_one(tmp_path):
    path = tmp_path / "probe.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"is not JSON.*fit-probe"):
        load_probe(path)
    data = json.loads(a_probe().model_dump_json())
    path.write_text(json.dumps({**data, "weights": "AAAAAA=="}))  # one float against four
    with pytest.raises(ConfigError, match="not a valid probe"):
        load_probe(path)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_probe(tmp_path / "absent.json")


def test_a_probe_for_another_gguf_is_a_config_error_naming_both_models():
    with pytest.raises(ConfigError) as caught:
        check_model(a_probe(), "probe.json", "b" * 64, "other.gguf")
    message = str(caught.value)
    assert SHA in message and "b" * 64 in message and "other.gguf" in message and "test model" in message
    check_model(a_probe(), "probe.json", SHA, "the same model")  # no error


def test_a_probe_fitted_under_other_prompts_or_unrecorded_ones_is_a_config_error_saying_to_refit():
    mine, other = prompt_fingerprint(), prompt_fingerprint(few_shot=True)
    with pytest.raises(ConfigError, match=rf"sha256 {other}.*sha256 {mine}.*fit-probe"):
        check_prompt(a_probe(prompt_sha256=other), "probe.json", mine)
    with pytest.raises(ConfigError, match=r"unrecorded prompts.*fit-probe"):
        check_prompt(a_probe(), "probe.json", mine)
    check_prompt(a_probe(prompt_sha256=mine), "probe.json", mine)  # no error


def test_the_prompt_fingerprint_changes_with_every_setting_that_changes_the_judges_prompts():
    prints = {
        prompt_fingerprint(),
        prompt_fingerprint("Reply with one word: True or False."),
        prompt_fingerprint(few_shot=True),
        prompt_fingerprint(instruction_first=True),
    }
    assert len(prints) == 4 and prompt_fingerprint() == prompt_fingerprint(GUARD_INSTRUCTION)


def synthetic(n_groups: int = 12, per_group: int = 10, width: int = 16, seed: int = 0):
    """The verdict's layer 1 carries the label along one direction (plus noise); the rest is noise only."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    labels = rng.permutation(np.arange(n) % 2 == 0)
    groups = [f"paragraph-{i // per_group}" for i in range(n)]
    direction = rng.normal(size=width)
    signal = rng.normal(size=(n, width)) + np.outer(np.where(labels, 1.5, -1.5), direction / np.linalg.norm(direction))
    states = {
        ("verdict", 1): signal,
        ("verdict", 2): rng.normal(size=(n, width)),
        ("extract", 1): rng.normal(size=(n, width)),
    }
    return states, labels.tolist(), groups


def test_grouped_folds_never_put_one_paragraph_on_both_sides():
    _, labels, groups = synthetic()
    splits = grouped_splits(labels, groups)
    assert len(splits) == 5
    for train, test in splits:
        assert not {groups[i] for i in train} & {groups[i] for i in test}
    with pytest.raises(ValueError, match="two groups"):
        grouped_splits(labels, ["one"] * len(labels))


def test_the_fitter_finds_the_informative_layer_and_separates_held_out_questions():
    states, labels, groups = synthetic()
    splits = grouped_splits(labels, groups)
    noise = [Reading(("verdict",), (2,)), Reading(("extract",), (1,))]
    informative = [Reading(("verdict",), (1,)), Reading(("verdict",), (1, 2)), Reading(("verdict", "extract"), (1,))]
    ranked = choose(states, labels, splits, [*noise, *informative])
    assert ranked[0].reading in informative
    assert ranked[0].auroc > 0.95
    assert all(candidate.auroc < 0.75 for candidate in ranked if candidate.reading in noise)


def test_the_combination_weighs_the_signals_the_guard_is_configured_with_that_were_read():
    assert combined_signals(["verdict", "extract", "probe"]) == ("verdict", "extract", "probe")
    assert combined_signals(["verdict", "probe"]) == ("verdict", "probe")
    assert combined_signals(["verdict", "missing"]) == ("verdict", "probe")  # the reversed question is not read
    states, labels, groups = synthetic()
    splits = grouped_splits(labels, groups)
    best = choose(states, labels, splits, [Reading(("verdict",), (1,))])[0]
    signals = [{"verdict": 0.3 if y else 0.1, "extract": math.log(0.5)} for y in labels]
    combination, _ = combine(signals, best.oof, labels, splits, ("verdict", "probe"))
    assert set(combination.weights) == {"verdict", "probe"}


def test_the_fitted_probe_file_scores_new_states_like_the_fit_and_carries_its_combination():
    states, labels, groups = synthetic()
    splits = grouped_splits(labels, groups)
    best = choose(states, labels, splits, [Reading(("verdict", "extract"), (1,))])[0]
    # prompt-level signals that know little: the combination should lean on the probe
    signals = [{"verdict": 0.3 if y else 0.1, "extract": math.log(0.5)} for y in labels]
    combination, held_out = combine(signals, best.oof, labels, splits)
    assert combination.weights["probe"] > 0
    assert held_out.shape == (len(labels),)
    probe = fit_probe(
        states,
        labels,
        best,
        combination,
        model_sha256=SHA,
        model_name="m",
        prompt_sha256=prompt_fingerprint(),
        fitted_on=["synthetic (120)"],
        combination_auroc=0.9,
    )
    scores = [
        probe.probability({"verdict": {1: states["verdict", 1][i]}, "extract": {1: states["extract", 1][i]}})
        for i in range(len(labels))
    ]
    assert auroc(scores, labels) > 0.95
    answerable = [p for p, y in zip(scores, labels, strict=True) if y]
    unanswerable = [p for p, y in zip(scores, labels, strict=True) if not y]
    assert np.mean(answerable) > 0.6 > 0.4 > np.mean(unanswerable)
    assert probe.layers == [1] and probe.calls == ["verdict", "extract"]
    assert probe.n == len(labels) and probe.c == best.c


def test_a_probe_reading_the_answer_start_needs_the_extract_call_among_the_signals(tmp_path):
    from rag_guard.config import load_config
    from rag_guard.factory import probe_for
    from rag_guard.judging.guard import SufficiencyGuard
    from rag_guard.models.presets import PRESETS
    from tests.fakes import judge_then_answer

    path = tmp_path / "probe.json"
    a_probe(calls=["extract"], model_sha256=PRESETS["default"].sha256).save(path)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"guard:\n  probe: {path}\n  signals: [verdict, probe]\n"
        "  calibration: {weights: {verdict: 1.0, probe: 1.0}, bias: 0.0}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"reads the hidden state of the extract call.*add extract to guard.signals"):
        probe_for(load_config(config, env={}))
    with pytest.raises(ValueError, match="add it to signals"):
        SufficiencyGuard(judge=judge_then_answer(0.5), signals=("verdict", "probe"), probe=a_probe(calls=["extract"]))


def test_the_bound_chosen_is_the_one_that_keeps_a_probe_from_overruling_confident_verdicts():
    from rag_guard.evaluation.probe_maths import choose_bound
    from rag_guard.judging.signals import Signals

    # one set where the probe ranks well, one where it crushes answerable questions the verdict is sure of
    labels = [True, True, False, False] * 2
    groups = ["squad"] * 4 + ["plain"] * 4
    verdicts = [0.8, 0.7, 0.6, 0.3, 0.9, 0.85, 0.5, 0.4]
    probes = [0.9, 0.8, 0.1, 0.05, 0.01, 0.02, 0.3, 0.2]
    signals = [Signals(verdict=v, probe=p) for v, p in zip(verdicts, probes, strict=True)]
    combined = [min(v, p) for v, p in zip(verdicts, probes, strict=True)]
    scored = choose_bound(signals, combined, labels, groups, bounds=(0.5, 1.0, None))
    assert scored[-1].bound is None and scored[-1].worst == 0.0  # unbounded, the plain set is reversed
    assert scored[0].bound == 0.5 and scored[0].mean == 1.0
    tie = choose_bound(signals[:4], combined[:4], labels[:4], groups[:4], bounds=(1.0, None))
    assert [s.bound for s in tie] == [1.0, None]  # a tie goes to the tighter bound


def test_a_probe_fitted_on_kept_states_leaves_one_set_out_and_only_scores_the_held_out_one(tmp_path):
    from rag_guard.config import Settings
    from rag_guard.evaluation.probe_command import fit_probe_on_features
    from rag_guard.evaluation.probe_states import FeatureRow, save_features

    states, labels, groups = synthetic(n_groups=16, per_group=10)
    sets = [f"squad/article-{int(g.split('-')[1]) % 4}" for g in groups[:120]] + ["handwritten"] * 40
    rows = [
        FeatureRow(
            key=f"q{i}",
            answerable=labels[i],
            group=groups[i],
            source=sets[i],
            verdict=0.7 if labels[i] else 0.4,
            extract=0.9,
            states={key: array[i].astype(np.float32) for key, array in states.items()},
        )
        for i in range(len(labels))
    ]
    save_features(tmp_path / "kept.npz", rows)
    run = fit_probe_on_features(
        Settings(), tmp_path / "kept.npz", ["squad"], ["handwritten"], [("verdict",)], [(1,), (2,)]
    )
    assert run.folds == 4 and run.n == 120  # one fold per article, the held-out set not fitted
    assert run.scored[0].reading == Reading(("verdict",), (1,))
    assert [f.label for f in run.per_file if not f.fitted] == ["handwritten"]
    assert all(not label.startswith("handwritten") for label in run.probe.fitted_on)
    assert run.probe.max_lowering == run.bounds[0].bound
    held_out = next(f for f in run.per_file if not f.fitted)
    assert held_out.n == 40 and held_out.probe > 0.9
    verdict_only = Settings.model_validate({"guard": {"signals": ["verdict", "probe"], "probe": "auto"}})
    without = fit_probe_on_features(verdict_only, tmp_path / "kept.npz", ["squad"], [], [("verdict",)], [(1,)])
    assert set(without.probe.combination.weights) == {"verdict", "probe"}  # no answer start asked, none weighed
    with pytest.raises(CorpusError, match="No row"):
        fit_probe_on_features(Settings(), tmp_path / "kept.npz", ["oxygen"], [], [("verdict",)], [(1,)])
