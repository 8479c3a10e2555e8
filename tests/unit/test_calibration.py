import math
import random

import pytest

from rag_guard.calibration import Calibration, choose_thresholds, fit_platt, out_of_fold
from rag_guard.config import load_config, write_guard_calibration
from rag_guard.guard import SufficiencyGuard
from tests.fakes import judge_then_answer
from tests.unit.test_pipeline import DOCS


def synthetic(n: int = 400, a: float = 2.0, b: float = -0.5, seed: int = 1) -> tuple[list[float], list[bool]]:
    """Raw scores whose true P(answerable) is sigmoid(a * logit(raw) + b)."""
    rng = random.Random(seed)
    raw = [rng.uniform(0.05, 0.95) for _ in range(n)]
    truth = [1 / (1 + math.exp(-(a * math.log(r / (1 - r)) + b))) for r in raw]
    return raw, [rng.random() < t for t in truth]


def test_platt_fit_recovers_the_generating_parameters():
    fit = fit_platt(*synthetic(4000))
    assert fit.a == pytest.approx(2.0, abs=0.2)
    assert fit.b == pytest.approx(-0.5, abs=0.15)


def test_a_perfectly_separated_set_still_gives_a_finite_fit():
    fit = fit_platt([0.1, 0.2, 0.8, 0.9], [False, False, True, True])
    assert math.isfinite(fit.a) and fit.a > 0
    assert fit.apply(0.9) > 0.5 > fit.apply(0.1)


def test_one_label_cannot_be_calibrated():
    with pytest.raises(ValueError, match="both"):
        fit_platt([0.2, 0.3], [True, True])


def test_out_of_fold_scores_come_from_fits_that_did_not_see_them():
    raw, labels = synthetic(50)
    held_out = out_of_fold(raw, labels)
    assert len(held_out) == 50
    assert held_out != [fit_platt(raw, labels).apply(r) for r in raw]  # not the in-sample fit


def test_the_lowest_threshold_reaching_the_target_is_chosen():
    probs = [0.2, 0.4, 0.6, 0.7, 0.8, 0.9]
    labels = [False, True, False, True, True, True]
    choice = choose_thresholds(probs, labels, target_precision=0.95)
    assert choice.answer_threshold == 0.7
    assert choice.expected_precision == 1.0
    assert choice.expected_coverage == 0.75
    assert choice.clarify_threshold == 0.5
    assert choice.reached_target


def test_an_unreachable_target_says_so_and_keeps_the_best_precision():
    choice = choose_thresholds([0.3, 0.9], [True, False], target_precision=0.95)
    assert not choice.reached_target
    assert choice.expected_precision == 0.5 and choice.answer_threshold == 0.3


def test_the_guard_applies_the_stored_calibration():
    sharpen = Calibration(a=3.0, b=0.0)
    raw = SufficiencyGuard(judge=judge_then_answer(0.65), answer_threshold=0.7, clarify_threshold=0.45)
    calibrated = raw.model_copy(update={"calibration": sharpen})
    item = {"question": "When did Voyager 2 launch?", "documents": DOCS}
    before, after = raw.invoke(item), calibrated.invoke(item)
    assert before.decision.value == "clarify" and after.decision.value == "answer"
    assert after.raw_p == pytest.approx(before.p_sufficient)
    assert after.p_sufficient == pytest.approx(sharpen.apply(before.p_sufficient))


def test_writing_the_calibration_keeps_the_config_comments(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "# my settings\nguard:\n  answer_threshold: 0.7   # tuned by hand\n  calibration: null  # from calibrate\n",
        encoding="utf-8",
    )
    write_guard_calibration(config, Calibration(a=1.5, b=-0.2, fitted_on="q.jsonl", n=46), 0.81, 0.5)
    text = config.read_text(encoding="utf-8")
    assert "# my settings" in text and "# tuned by hand" in text and "# from calibrate" in text
    guard = load_config(config, env={}).guard
    assert guard.answer_threshold == 0.81 and guard.clarify_threshold == 0.5
    assert guard.calibration == Calibration(a=1.5, b=-0.2, fitted_on="q.jsonl", n=46)
