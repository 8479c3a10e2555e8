import math

import pytest

from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION, GUARD_INSTRUCTION, MISSING_INSTRUCTION
from rag_guard.judging.signals import EXTRACT_WEIGHT, Signals, logit, sigmoid
from tests.fakes import DOCS, FakeChatModel, judge_then_answer, openai_logprobs

ITEM = {"question": "When did Voyager 2 launch?", "documents": DOCS}
NOT_MEASURED = {"retrieval": None, "probe": None, "answer": None, "verify": None}


def test_probabilities_enter_a_calibration_as_log_odds_the_answer_start_as_a_log_probability():
    features = Signals(verdict=0.8, extract=0.5, missing=0.25, retrieval=0.61, answer=-0.4).features()
    assert features == pytest.approx(
        {
            "verdict": math.log(4),
            "extract": math.log(0.5),
            "missing": math.log(1 / 3),
            "retrieval": 0.61,
            "answer": -0.4,
        }
    )


def test_debiasing_averages_the_verdict_with_the_reversed_question_in_log_odds():
    assert Signals(verdict=0.9).combined() == 0.9
    assert Signals(verdict=0.8, missing=0.6).combined() == pytest.approx(sigmoid((logit(0.8) - logit(0.6)) / 2))
    # a model that says True to everything: both questions lean True, and the leaning cancels
    assert Signals(verdict=0.7, missing=0.7).combined() == pytest.approx(0.5)


def test_the_guard_asks_the_reversed_question_first_so_the_verdict_prompt_stays_cached():
    asked: list[str] = []
    inner = judge_then_answer(0.8, p_missing=0.3)

    def reply(messages, kwargs):
        asked.append("missing" if MISSING_INSTRUCTION in messages[-1].text else "verdict")
        return inner.reply(messages, kwargs)

    guard = SufficiencyGuard(judge=FakeChatModel(reply=reply), signals=("verdict", "missing"))
    verdict = guard.invoke(ITEM)
    assert asked == ["missing", "verdict"]
    assert verdict.signals is not None
    assert verdict.signals.model_dump() == pytest.approx(
        {"verdict": 0.8, "extract": None, "missing": 0.3, **NOT_MEASURED}
    )
    assert verdict.raw_p == pytest.approx(0.8)
    assert verdict.p_sufficient == pytest.approx(sigmoid((logit(0.8) - logit(0.3)) / 2))


async def test_the_async_guard_measures_the_same_signals():
    guard = SufficiencyGuard(judge=judge_then_answer(0.8, p_missing=0.3), signals=("verdict", "missing"))
    assert (await guard.ainvoke(ITEM)).p_sufficient == pytest.approx(guard.invoke(ITEM).p_sufficient)


def test_a_reversed_question_without_logprobs_makes_the_guard_refuse():
    def reply(messages, kwargs):
        if MISSING_INSTRUCTION in messages[-1].text:
            return "False", None
        return "True", openai_logprobs({"True": 0.99, "False": 0.01})

    verdict = SufficiencyGuard(judge=FakeChatModel(reply=reply), signals=("verdict", "missing")).invoke(ITEM)
    assert verdict.decision.value == "refuse" and verdict.p_sufficient is None
    assert "no trustworthy probability" in verdict.reason


def test_with_the_answer_start_asked_for_the_extractive_question_comes_before_the_verdict_and_discounts_it():
    asked: list[str] = []
    inner = judge_then_answer(0.8, p_extract=0.2)

    def reply(messages, kwargs):
        asked.append(messages[-1].text)
        return inner.reply(messages, kwargs)

    verdict = SufficiencyGuard(judge=FakeChatModel(reply=reply), signals=("verdict", "extract")).invoke(ITEM)
    assert asked[0].endswith(EXTRACT_INSTRUCTION) and asked[1].endswith(GUARD_INSTRUCTION) and len(asked) == 2
    assert verdict.signals is not None
    assert verdict.signals.model_dump() == pytest.approx(
        {"verdict": 0.8, "extract": 0.2, "missing": None, **NOT_MEASURED}
    )
    assert verdict.p_sufficient == pytest.approx(sigmoid(logit(0.8) + EXTRACT_WEIGHT * math.log(0.2)))


def test_a_confident_answer_start_leaves_the_verdict_as_it_is():
    assert Signals(verdict=0.8, extract=1.0).combined() == pytest.approx(0.8)
    assert Signals(verdict=0.8, extract=0.5).combined() < 0.8


def test_with_the_probe_measured_p_is_capped_at_the_prompt_level_score_and_never_raised():
    probed = Signals(verdict=0.8, extract=0.5, probe=0.99)
    assert probed.capped(0.95) == pytest.approx(probed.combined())
    assert probed.capped(0.1) == 0.1
    assert Signals(verdict=0.8, extract=0.5).capped(0.95) == 0.95  # no probe, nothing to cap


def test_a_bounded_probe_lowers_the_prompt_level_score_by_at_most_its_bound_in_log_odds():
    probed = Signals(verdict=0.8, probe=0.01)
    assert probed.capped(0.01, max_lowering=1.5) == pytest.approx(sigmoid(logit(0.8) - 1.5))  # about 0.47
    assert probed.capped(0.6, max_lowering=1.5) == 0.6  # within the bound, the combination stands
    assert probed.capped(0.95, max_lowering=1.5) == pytest.approx(0.8)  # and it still never raises


def test_a_model_sure_to_decline_pulls_a_confident_verdict_below_the_clarify_band():
    judge = judge_then_answer(0.95, p_extract=0.0)
    guard = SufficiencyGuard(judge=judge, answer_threshold=0.7, clarify_threshold=0.45, signals=("verdict", "extract"))
    verdict = guard.invoke(ITEM)
    assert verdict.signals is not None and verdict.signals.extract == 0.0
    assert verdict.decision.value == "refuse" and verdict.p_sufficient is not None


def test_an_extractive_reply_without_logprobs_makes_the_guard_refuse():
    def reply(messages, kwargs):
        if EXTRACT_INSTRUCTION in messages[-1].text:
            return "August", None
        return "True", openai_logprobs({"True": 0.99, "False": 0.01})

    verdict = SufficiencyGuard(judge=FakeChatModel(reply=reply), signals=("verdict", "extract")).invoke(ITEM)
    assert verdict.decision.value == "refuse" and verdict.p_sufficient is None
    assert "no trustworthy probability" in verdict.reason


def test_by_default_only_the_verdict_is_asked():
    asked: list[str] = []

    def reply(messages, kwargs):
        asked.append(messages[-1].text)
        return "True", openai_logprobs({"True": 0.9, "False": 0.1})

    verdict = SufficiencyGuard(judge=FakeChatModel(reply=reply)).invoke(ITEM)
    assert len(asked) == 1 and asked[0].endswith(GUARD_INSTRUCTION)
    assert verdict.signals is not None
    assert verdict.signals.model_dump() == pytest.approx(
        {"verdict": 0.9, "extract": None, "missing": None, **NOT_MEASURED}
    )
    assert verdict.p_sufficient == pytest.approx(0.9)
