import math

import pytest

from rag_guard.judging.decision import Decision, decide, decide_with_probe


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.9, Decision.ANSWER),
        (0.5, Decision.ANSWER),
        (0.49, Decision.CLARIFY),
        (0.2, Decision.CLARIFY),
        (0.19, Decision.REFUSE),
        (0.0, Decision.REFUSE),
    ],
)
def test_decide_bands(p, expected):
    assert decide(p, answer_threshold=0.5, clarify_threshold=0.2) is expected


@pytest.mark.parametrize("p", [None, math.nan, math.inf])
def test_decide_fails_closed_without_a_probability(p):
    assert decide(p, 0.5, 0.2) is Decision.REFUSE


def test_equal_thresholds_leave_no_clarify_band():
    assert decide(0.6, 0.6, 0.6) is Decision.ANSWER
    assert decide(0.59, 0.6, 0.6) is Decision.REFUSE


@pytest.mark.parametrize(("answer", "clarify"), [(0.2, 0.5), (1.5, 0.2), (0.5, -0.1)])
def test_decide_rejects_disordered_or_out_of_range_thresholds(answer, clarify):
    with pytest.raises(ValueError):
        decide(0.5, answer, clarify)


@pytest.mark.parametrize(
    ("p", "prompt_level", "expected"),
    [
        (0.8, 0.9, Decision.ANSWER),
        (0.5, 0.9, Decision.CLARIFY),
        (0.2, 0.75, Decision.CLARIFY),  # the probe's doubt on a question the prompt-level score would answer
        (0.2, 0.5, Decision.CLARIFY),  # ... or clarify
        (0.2, 0.3, Decision.REFUSE),  # both low: refused
    ],
)
def test_with_the_probe_its_doubt_asks_rather_than_refuses(p, prompt_level, expected):
    assert decide_with_probe(p, prompt_level, answer_threshold=0.7, clarify_threshold=0.45) is expected


@pytest.mark.parametrize("p", [None, math.nan])
def test_with_the_probe_no_probability_still_refuses(p):
    assert decide_with_probe(p, 0.9, 0.7, 0.45) is Decision.REFUSE
