import pytest

from rag_guard.evaluation.metrics import auroc, expected_calibration_error, gate_quality, stratified_sample
from rag_guard.judging.decision import Decision


def test_auroc_is_one_for_a_perfect_ranking_and_half_for_ties():
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.1, 0.9], [True, False]) == 0.0


def test_auroc_counts_pairs():
    # pairs (pos, neg): (0.8,0.7) win, (0.8,0.9) loss, (0.6,0.7) loss, (0.6,0.9) loss
    assert auroc([0.8, 0.6, 0.7, 0.9], [True, True, False, False]) == pytest.approx(0.25)


def test_auroc_is_undefined_with_one_class():
    assert auroc([0.3, 0.4], [True, True]) is None


def test_calibration_error_is_zero_when_probabilities_match_frequencies():
    probs = [0.25] * 4 + [0.75] * 4
    labels = [True, False, False, False, True, True, True, False]
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)


def test_calibration_error_of_confident_mistakes():
    assert expected_calibration_error([0.95, 0.95], [False, False]) == pytest.approx(0.95)


def test_gate_quality_counts_decisions_per_label():
    quality = gate_quality(
        probs=[0.9, 0.8, 0.5, None, 0.75, 0.2],
        labels=[True, True, True, True, False, False],
        decisions=[
            Decision.ANSWER,
            Decision.ANSWER,
            Decision.CLARIFY,
            Decision.REFUSE,
            Decision.ANSWER,
            Decision.REFUSE,
        ],
        answer_threshold=0.7,
        clarify_threshold=0.45,
    )
    assert quality.answerable.model_dump() == {"answer": 2, "clarify": 1, "refuse": 1}
    assert quality.unanswerable.model_dump() == {"answer": 1, "clarify": 0, "refuse": 1}
    assert quality.answered_precision == pytest.approx(2 / 3)
    assert quality.coverage == pytest.approx(0.5)
    assert quality.unanswerable_refusal_rate == pytest.approx(0.5)
    assert quality.unanswerable_answered_rate == pytest.approx(0.5)
    assert quality.no_probability == 1
    # the verdict without a probability scores 0: it ranks below both unanswerable questions
    assert quality.auroc == pytest.approx((2 + 2 + 1 + 0) / 8)


def test_nothing_answered_leaves_precision_undefined():
    quality = gate_quality([0.1], [True], [Decision.REFUSE], 0.7, 0.45)
    assert quality.answered_precision is None
    assert quality.coverage == 0.0


def test_stratified_sample_keeps_the_label_mix_and_file_order():
    items = list(range(20))
    labels = [i < 15 for i in items]  # 75 % answerable
    sample = stratified_sample(items, labels, 8)
    assert len(sample) == 8
    assert sum(labels[i] for i in sample) == 6
    assert sample == sorted(sample)
    assert stratified_sample(items, labels, 8) == sample  # seeded


def test_stratified_sample_keeps_one_of_a_rare_label():
    labels = [True] * 19 + [False]
    assert any(not labels[i] for i in stratified_sample(list(range(20)), labels, 3))
