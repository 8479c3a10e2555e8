import math
import random

import pytest
from langchain_core.documents import Document

from rag_guard.config import GuardSettings, load_config, write_guard_calibration
from rag_guard.evaluation.calibration_maths import choose_thresholds, fit, out_of_fold
from rag_guard.judging.calibration import Calibration
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.signals import logit
from tests.fakes import DOCS, judge_then_answer


def synthetic(n: int = 400, a: float = 2.0, b: float = -0.5, seed: int = 1) -> tuple[list[dict], list[bool]]:
    """Verdict features whose true P(answerable) is sigmoid(a * logit(raw) + b)."""
    rng = random.Random(seed)
    raw = [rng.uniform(0.05, 0.95) for _ in range(n)]
    truth = [1 / (1 + math.exp(-(a * logit(r) + b))) for r in raw]
    return [{"verdict": logit(r)} for r in raw], [rng.random() < t for t in truth]


def test_platt_fit_recovers_the_generating_parameters():
    fitted = fit(*synthetic(4000), ["verdict"])
    assert fitted.weights["verdict"] == pytest.approx(2.0, abs=0.2)
    assert fitted.bias == pytest.approx(-0.5, abs=0.15)


def test_a_combination_weighs_each_signal_by_what_it_adds():
    rng = random.Random(3)
    rows, labels = [], []
    for _ in range(4000):
        verdict, retrieval = rng.gauss(0, 2), rng.uniform(0.2, 0.8)
        rows.append({"verdict": verdict, "retrieval": retrieval, "missing": rng.gauss(0, 1)})  # missing: noise
        labels.append(rng.random() < 1 / (1 + math.exp(-(1.5 * verdict + 4.0 * (retrieval - 0.5)))))
    fitted = fit(rows, labels, ["verdict", "missing", "retrieval"])
    assert fitted.weights["verdict"] == pytest.approx(1.5, abs=0.2)
    assert fitted.weights["retrieval"] == pytest.approx(4.0, abs=0.8)
    assert abs(fitted.weights["missing"]) < 0.15


def test_a_perfectly_separated_set_still_gives_a_finite_fit():
    fitted = fit([{"verdict": logit(p)} for p in (0.1, 0.2, 0.8, 0.9)], [False, False, True, True], ["verdict"])
    assert math.isfinite(fitted.weights["verdict"]) and fitted.weights["verdict"] > 0
    assert fitted.apply({"verdict": logit(0.9)}) > 0.5 > fitted.apply({"verdict": logit(0.1)})


def test_one_label_cannot_be_calibrated():
    with pytest.raises(ValueError, match="both"):
        fit([{"verdict": 0.0}, {"verdict": 1.0}], [True, True], ["verdict"])


def test_a_calibration_refuses_to_score_without_its_signals():
    with pytest.raises(ValueError, match="retrieval"):
        Calibration(weights={"verdict": 1.0, "retrieval": 2.0}, bias=0.0).apply({"verdict": 0.3})


def test_the_earlier_platt_pair_reads_as_verdict_weights():
    assert Calibration.model_validate({"a": 1.5, "b": -0.2, "n": 9}) == Calibration(
        weights={"verdict": 1.5}, bias=-0.2, n=9
    )


def test_out_of_fold_scores_come_from_fits_that_did_not_see_them():
    features, labels = synthetic(50)
    held_out = out_of_fold(features, labels, ["verdict"])
    assert len(held_out) == 50
    in_sample = fit(features, labels, ["verdict"])
    assert held_out != [in_sample.apply(f) for f in features]


def test_the_lowest_threshold_reaching_the_target_is_chosen():
    probs = [0.2, 0.4, 0.6, 0.7, 0.8, 0.9]
    labels = [False, True, False, True, True, True]
    choice = choose_thresholds(probs, labels, target_precision=0.95)
    assert choice.answer_threshold == 0.7
    assert choice.expected_precision == 1.0
    assert choice.expected_coverage == 0.75
    assert choice.clarify_threshold == 0.5
    assert choice.reached_target


def test_read_from_the_probabilities_a_threshold_may_sit_below_the_highest_unanswerable_question():
    probs = [0.1, 0.2, 0.3, 0.85, 0.9, 0.92, 0.95, 0.97, 0.98, 0.99]
    labels = [False, False, False, True, False, True, True, True, True, True]
    counted = choose_thresholds(probs, labels, target_precision=0.9)
    expected = choose_thresholds(probs, labels, target_precision=0.9, expected=True)
    assert counted.answer_threshold == 0.92  # above the unanswerable question at 0.9
    assert expected.answer_threshold == 0.85
    assert expected.expected_precision == pytest.approx(sum(probs[3:]) / 7)
    assert expected.expected_coverage == pytest.approx(sum(probs[3:]) / sum(probs))


def test_an_unreachable_target_says_so_and_keeps_the_best_precision():
    choice = choose_thresholds([0.3, 0.9], [True, False], target_precision=0.95)
    assert not choice.reached_target
    assert choice.expected_precision == 0.5 and choice.answer_threshold == 0.3


def test_the_guard_applies_the_stored_calibration():
    sharpen = Calibration(weights={"verdict": 3.0}, bias=0.0)
    raw = SufficiencyGuard(judge=judge_then_answer(0.65), answer_threshold=0.7, clarify_threshold=0.45)
    calibrated = raw.model_copy(update={"calibration": sharpen})
    item = {"question": "When did Voyager 2 launch?", "documents": DOCS}
    before, after = raw.invoke(item), calibrated.invoke(item)
    assert before.decision.value == "clarify" and after.decision.value == "answer"
    assert after.raw_p == pytest.approx(before.p_sufficient)
    assert after.p_sufficient == pytest.approx(sharpen.apply({"verdict": logit(before.p_sufficient)}))


def test_the_retrieval_signal_is_the_best_passage_similarity():
    weights = Calibration(weights={"verdict": 1.0, "retrieval": 5.0}, bias=-2.5)
    guard = SufficiencyGuard(
        judge=judge_then_answer(0.5), signals=("verdict", "retrieval"), calibration=weights, clarify_threshold=0.1
    )
    scored = [
        Document(page_content=doc.page_content, metadata={**doc.metadata, "score": score})
        for doc, score in zip(DOCS, [0.4, 0.7], strict=True)
    ]
    verdict = guard.invoke({"question": "When did Voyager 2 launch?", "documents": scored})
    assert verdict.signals is not None and verdict.signals.retrieval == 0.7
    assert verdict.signals.verdict == pytest.approx(0.5)
    assert verdict.p_sufficient == pytest.approx(weights.apply({"verdict": 0.0, "retrieval": 0.7}))


def test_without_similarity_scores_a_retrieval_calibration_refuses_and_says_why():
    weights = Calibration(weights={"verdict": 1.0, "retrieval": 5.0}, bias=-2.5)
    guard = SufficiencyGuard(judge=judge_then_answer(0.99), signals=("verdict", "retrieval"), calibration=weights)
    unscored = [Document(page_content=d.page_content, metadata={"source": "a.md"}) for d in DOCS]
    verdict = guard.invoke({"question": "When did Voyager 2 launch?", "documents": unscored})
    assert verdict.decision.value == "refuse" and verdict.p_sufficient is None
    assert "metadata['score']" in verdict.reason


@pytest.mark.parametrize(
    ("guard", "complaint"),
    [
        ({"signals": ["missing"]}, "must include verdict"),
        ({"signals": ["verdict", "retrieval"]}, "calibrate"),
        ({"signals": ["verdict", "missing"], "calibration": {"weights": {"verdict": 1.0}, "bias": 0}}, "again"),
        ({"signals": ["verdict", "missing"], "mode": "single_pass"}, "single_pass"),
    ],
)
def test_signal_settings_that_cannot_be_measured_are_config_errors(guard, complaint):
    with pytest.raises(ValueError, match=complaint):
        GuardSettings.model_validate(guard)


def test_writing_the_calibration_keeps_the_config_comments(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "# my settings\nguard:\n  answer_threshold: 0.7   # tuned by hand\n  calibration: null  # from calibrate\n",
        encoding="utf-8",
    )
    stored = Calibration(weights={"verdict": 1.5}, bias=-0.2, fitted_on="q.jsonl", n=46)
    write_guard_calibration(config, stored, 0.81, 0.5)
    text = config.read_text(encoding="utf-8")
    assert "# my settings" in text and "# tuned by hand" in text and "# from calibrate" in text
    guard = load_config(config, env={}).guard
    assert guard.answer_threshold == 0.81 and guard.clarify_threshold == 0.5
    assert guard.calibration == stored
    assert guard.signals == ["verdict"] and "signals: [verdict]" in text  # what it weighs, whatever the default


def test_writing_a_calibration_replaces_the_signals_in_place_keeping_their_comment(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("guard:\n  signals: null  # the mode's default\n  calibration: null\n", encoding="utf-8")
    stored = Calibration(weights={"verdict": 1.5, "extract": 0.4}, bias=-0.2)
    write_guard_calibration(config, stored, 0.8, 0.5)
    text = config.read_text(encoding="utf-8")
    assert "signals: [verdict, extract] # the mode's default" in text
    assert load_config(config, env={}).guard.signals == ["verdict", "extract"]
