from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnablePassthrough

from rag_guard.errors import InvalidQuestionError
from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard, decision_rule, plain_reason
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from tests.fakes import FakeChatModel, FixedRetriever, judge_by_question, judge_then_answer, openai_logprobs

DOCS = [Document(page_content="Voyager 2 launched on 20 August 1977.", metadata={"source": "voyager.md"})]


def guard_with(p_true: float, **kwargs) -> SufficiencyGuard:
    return SufficiencyGuard(judge=judge_then_answer(p_true), answer_threshold=0.6, clarify_threshold=0.3, **kwargs)


@pytest.mark.parametrize(("p", "decision"), [(0.9, Decision.ANSWER), (0.4, Decision.CLARIFY), (0.1, Decision.REFUSE)])
def test_guard_decides_by_thresholds(p, decision):
    verdict = guard_with(p).invoke({"question": "When did Voyager 2 launch?", "documents": DOCS})
    assert verdict.decision is decision
    assert verdict.p_sufficient == pytest.approx(p, abs=1e-3)


def test_verdict_carries_token_logprob_alternatives_and_timing():
    verdict = guard_with(0.8).invoke({"question": "q?", "documents": DOCS})
    assert verdict.token == "True"
    assert verdict.logprob == pytest.approx(-0.2231, abs=1e-3)
    assert verdict.alternatives["True"] == pytest.approx(0.8)
    assert verdict.alternatives["False"] == pytest.approx(0.2)
    assert verdict.guard_s is not None


def test_guard_asks_for_exactly_one_token_with_top_logprobs():
    guard = guard_with(0.8, top_logprobs=7)
    guard.invoke({"question": "q?", "documents": DOCS})
    assert guard.judge.calls, "the guard asked nothing"
    for call in guard.judge.calls:  # the verdict and the signals asked before it
        assert (call["max_tokens"], call["logprobs"], call["top_logprobs"]) == (1, True, 7)


def test_prompt_puts_the_instruction_after_the_delimited_context():
    guard = guard_with(0.8)
    guard.invoke({"question": "When did Voyager 2 launch?", "documents": DOCS})
    user = guard.judge.calls[-1]["messages"][-1].text  # the verdict is asked last
    assert user.index("<context>") < user.index("</context>") < user.index("Question:") < user.index("True or False")


def test_reply_without_logprobs_refuses_with_the_reason():
    guard = SufficiencyGuard(judge=FakeChatModel(reply=lambda m, k: ("True", None)))
    verdict = guard.invoke({"question": "q?", "documents": DOCS})
    assert verdict.decision is Decision.REFUSE
    assert verdict.p_sufficient is None
    assert "returned no logprobs" in verdict.reason


def test_reply_without_any_true_false_alternative_refuses():
    guard = SufficiencyGuard(judge=FakeChatModel(reply=lambda m, k: ("The", openai_logprobs({"The": 0.9, "A": 0.1}))))
    verdict = guard.invoke({"question": "q?", "documents": DOCS})
    assert verdict.decision is Decision.REFUSE
    assert "no True/False" in verdict.reason


def test_model_failure_refuses_instead_of_raising():
    def boom(messages, kwargs):
        raise TimeoutError("model took too long")

    verdict = SufficiencyGuard(judge=FakeChatModel(reply=boom)).invoke({"question": "q?", "documents": DOCS})
    assert verdict.decision is Decision.REFUSE
    assert "did not reply in time" in verdict.reason


@pytest.mark.parametrize("question", ["", "   \n", b"\xff\xfe", "caf\udce9?", None, 42, "x" * 4001])
def test_unusable_questions_raise_a_clear_error(question):
    with pytest.raises(InvalidQuestionError):
        guard_with(0.9).invoke({"question": question, "documents": DOCS})


def test_thresholds_in_wrong_order_are_rejected():
    with pytest.raises(ValueError, match="clarify_threshold"):
        SufficiencyGuard(judge=judge_then_answer(0.5), answer_threshold=0.2, clarify_threshold=0.5)


def test_documents_that_do_not_fit_are_dropped_lowest_rank_first_and_reported():
    docs = [Document(page_content=f"passage {i} " + "word " * 200, metadata={"source": f"{i}.md"}) for i in range(4)]
    guard = guard_with(0.9, context_window=700, reserve_tokens=100)  # the fake counts ~4 chars per token
    fitted = guard.fit("q?", docs)
    assert [d.metadata["source"] for d in fitted] == ["0.md", "1.md"][: len(fitted)]
    assert 0 < len(fitted) < 4
    verdict = guard.invoke({"question": "q?", "documents": docs})
    assert verdict.context_truncated
    assert verdict.documents_used == len(fitted)
    assert "left out" in verdict.reason


def test_a_long_question_is_kept_whole_and_the_context_is_cut_instead():
    docs = [Document(page_content=f"passage {i} " + "word " * 100, metadata={"source": f"{i}.md"}) for i in range(4)]
    question = "Which of the probes " + "and which other probes " * 100 + "launched first?"
    guard = guard_with(0.9, context_window=1200, reserve_tokens=100)
    verdict = guard.invoke({"question": question, "documents": docs})
    assert verdict.context_truncated
    assert verdict.documents_used < 4
    assert question in guard.judge.calls[-1]["messages"][-1].text


def test_a_question_that_alone_overflows_the_window_is_a_clear_error():
    guard = guard_with(0.9, context_window=600, reserve_tokens=100)
    with pytest.raises(InvalidQuestionError, match="too long for the model"):
        guard.invoke({"question": "why " * 900, "documents": DOCS})
    assert guard.judge.calls == []


def test_guard_composes_inside_an_lcel_chain():
    chain = {"question": RunnablePassthrough(), "documents": FixedRetriever(documents=DOCS)} | guard_with(0.9)
    assert chain.invoke("When did Voyager 2 launch?").decision is Decision.ANSWER


async def test_guard_ainvoke_and_batch_agree_with_invoke():
    guard = guard_with(0.45)
    item = {"question": "q?", "documents": DOCS}
    assert (await guard.ainvoke(item)).decision is Decision.CLARIFY
    assert [v.decision for v in guard.batch([item, item])] == [Decision.CLARIFY] * 2


def probed_guard(
    hidden: dict[int, list[float]], p_true: float = 0.6, **probe: Any
) -> tuple[SufficiencyGuard, FakeChatModel]:
    from tests.unit.judging.test_probe import a_probe

    judge = judge_then_answer(p_true)
    judge.hidden = hidden
    guard = SufficiencyGuard(
        judge=judge,
        answer_threshold=0.6,
        clarify_threshold=0.3,
        signals=("verdict", "extract", "probe"),
        probe=a_probe(**probe),
    )
    return guard, judge


def test_the_probe_reads_the_verdict_calls_own_hidden_state_and_its_combination_makes_p():
    from rag_guard.judging.signals import Signals, sigmoid

    doubtful = [-5.0, 1.0, 7.0, 2.5]  # a state the probe scores low
    guard, judge = probed_guard({3: doubtful})
    verdict = guard.invoke({"question": "When did Voyager 2 launch?", "documents": DOCS})
    asked = [call.get("hidden_layers") for call in judge.calls]
    assert asked == [None, [3]]  # the answer start asks for nothing; the verdict for the probe's layer
    probe = guard.probe
    assert probe is not None
    expected_probe = probe.probability({"verdict": {3: doubtful}})
    assert verdict.signals is not None and verdict.signals.probe == pytest.approx(expected_probe)
    features = Signals(verdict=0.6, extract=1.0, probe=expected_probe).features()
    combined = sigmoid(probe.combination.bias + sum(w * features[k] for k, w in probe.combination.weights.items()))
    assert combined < 0.6
    assert verdict.p_sufficient == pytest.approx(combined)
    assert "capped" not in verdict.reason


def test_a_probe_on_both_calls_reads_the_answer_starts_state_too_from_its_own_call():
    verdict_state, extract_state = [3.0, 1.0], [7.0, 2.5]
    guard, judge = probed_guard({3: verdict_state}, calls=["verdict", "extract"])
    judge.hidden_by_instruction = {EXTRACT_INSTRUCTION: {3: extract_state}}
    verdict = guard.invoke({"question": "When did Voyager 2 launch?", "documents": DOCS})
    assert [call.get("hidden_layers") for call in judge.calls] == [[3], [3]]
    assert guard.probe is not None and verdict.signals is not None
    expected = guard.probe.probability({"verdict": {3: verdict_state}, "extract": {3: extract_state}})
    assert verdict.signals.probe == pytest.approx(expected)
    assert guard.probe.probability({"verdict": {3: verdict_state}, "extract": {3: verdict_state}}) != expected


def test_the_probe_can_lower_p_but_never_raise_it_above_the_prompt_level_score():
    confident = [9.0, -3.0, 7.0, 4.0]  # a state the probe scores high, as injected text can make it
    guard, _ = probed_guard({3: confident}, p_true=0.5)
    verdict = guard.invoke({"question": "When did Voyager 2 launch?", "documents": DOCS})
    assert verdict.signals is not None and verdict.signals.probe is not None and verdict.signals.probe > 0.99
    assert verdict.p_sufficient == pytest.approx(verdict.signals.combined())
    assert verdict.decision is Decision.CLARIFY  # 0.5: not lifted over the 0.6 answer threshold
    assert "held at the score without the probe" in verdict.reason


def test_without_the_hidden_state_the_probe_cannot_score_and_the_guard_refuses():
    guard, _ = probed_guard({})
    verdict = guard.invoke({"question": "When did Voyager 2 launch?", "documents": DOCS})
    assert verdict.decision is Decision.REFUSE
    assert verdict.p_sufficient is None
    assert "no hidden state for layer 3" in verdict.reason


def test_a_probe_signal_without_a_probe_is_rejected():
    with pytest.raises(ValueError, match="give the guard a probe"):
        SufficiencyGuard(judge=judge_then_answer(0.5), signals=("verdict", "probe"))


def test_the_probes_doubt_clarifies_a_question_the_prompt_level_score_would_answer():
    very_doubtful = [-9.0, 3.0, -7.0, -4.0]
    guard, _ = probed_guard({3: very_doubtful}, p_true=0.9)
    verdict = guard.invoke({"question": "When did Voyager 2 launch, and what did it cost?", "documents": DOCS})
    assert verdict.p_sufficient is not None and verdict.p_sufficient < guard.clarify_threshold
    assert verdict.signals is not None and verdict.signals.combined() >= guard.answer_threshold
    assert verdict.decision is Decision.CLARIFY
    assert verdict.rule == "detail_doubted" and "a detail may not match" in verdict.reason


def test_states_read_for_fitting_come_from_the_verdict_and_the_answer_start_not_the_reversed_question():
    judge = judge_then_answer(0.6)
    judge.hidden = {3: [1.0, 2.0]}
    guard = SufficiencyGuard(judge=judge, signals=("verdict", "extract", "missing"), read_layers=(3,))
    verdict = guard.invoke({"question": "When did Voyager 2 launch?", "documents": DOCS})
    assert [call.get("hidden_layers") for call in judge.calls] == [[3], None, [3]]  # extract, missing, verdict
    assert verdict.hidden_states == {"verdict": {3: [1.0, 2.0]}, "extract": {3: [1.0, 2.0]}}


@pytest.mark.parametrize(
    ("p", "prompt_level", "decision", "said"),
    [
        (0.8, 0.8, Decision.ANSWER, "the passages appear to state the answer"),
        (0.5, 0.5, Decision.CLARIFY, "may answer only part of the question"),
        (0.1, 0.5, Decision.CLARIFY, "a detail may not match, so it asks"),
        (0.1, 0.1, Decision.REFUSE, "the passages do not appear to answer it"),
    ],
)
def test_every_decision_s_reason_says_in_plain_words_which_rule_made_it(p, prompt_level, decision, said):
    reason = plain_reason(decision_rule(decision, p, 0.45), p, prompt_level, 0.7, 0.45)
    assert said in reason and f"p_sufficient {p:.3f}" in reason
    assert "prompt-level" not in reason and "capped" not in reason


TWO_PART = "When was Voyager 2 launched, and how much did the mission cost?"


def test_a_two_part_question_is_as_sufficient_as_its_least_covered_part():
    judge = judge_by_question({TWO_PART: 0.9, "How much did the mission cost?": 0.4})
    guard = SufficiencyGuard(judge=judge, answer_threshold=0.6, clarify_threshold=0.3)
    verdict = guard.invoke({"question": TWO_PART, "documents": DOCS})
    assert verdict.decision is Decision.CLARIFY
    assert verdict.p_sufficient == pytest.approx(0.4, abs=1e-3)
    assert verdict.raw_p == pytest.approx(0.9, abs=1e-3)
    assert verdict.parts == pytest.approx({"When was Voyager 2 launched?": 0.9, "How much did the mission cost?": 0.4})
    assert verdict.uncovered_part == "How much did the mission cost?"
    assert '"How much did the mission cost?"' in verdict.reason
    assert TWO_PART in judge.calls[-1]["messages"][-1].text  # the whole question's verdict goes last


def test_parts_that_score_above_the_whole_question_leave_its_verdict_alone():
    judge = judge_by_question(
        {TWO_PART: 0.7, "When was Voyager 2 launched?": 0.9, "How much did the mission cost?": 0.8}
    )
    guard = SufficiencyGuard(judge=judge, answer_threshold=0.6, clarify_threshold=0.3)
    verdict = guard.invoke({"question": TWO_PART, "documents": DOCS})
    assert verdict.p_sufficient == pytest.approx(0.7, abs=1e-3)
    assert len(judge.calls) == 3
    assert verdict.uncovered_part == "How much did the mission cost?"  # of two judged parts, the weaker


def test_one_judged_part_above_the_whole_question_names_no_part():
    question = "When was Voyager 2 launched, and how much did it cost?"  # "it": the second part is not judged
    guard = SufficiencyGuard(judge=judge_by_question({question: 0.5}), answer_threshold=0.6, clarify_threshold=0.3)
    verdict = guard.invoke({"question": question, "documents": DOCS})
    assert verdict.parts == pytest.approx({"When was Voyager 2 launched?": 0.9})
    assert verdict.uncovered_part is None


@pytest.mark.parametrize(("question", "judge_parts"), [("When was Voyager 2 launched?", True), (TWO_PART, False)])
def test_a_one_part_question_or_parts_switched_off_cost_one_call(question, judge_parts):
    judge = judge_by_question({"How much did the mission cost?": 0.1})
    guard = SufficiencyGuard(judge=judge, judge_parts=judge_parts)
    verdict = guard.invoke({"question": question, "documents": DOCS})
    assert len(judge.calls) == 1
    assert verdict.parts == {}
    assert verdict.p_sufficient == pytest.approx(0.9, abs=1e-3)


def test_a_part_without_a_probability_refuses():
    def reply(messages, kwargs):
        if "How much did the mission cost?" in messages[-1].text and TWO_PART not in messages[-1].text:
            return "True", None
        return "True", openai_logprobs({"True": 0.9, "False": 0.1})

    verdict = SufficiencyGuard(judge=FakeChatModel(reply=reply)).invoke({"question": TWO_PART, "documents": DOCS})
    assert verdict.decision is Decision.REFUSE
    assert verdict.p_sufficient is None


@pytest.mark.parametrize(("whole", "decision"), [(0.9, Decision.CLARIFY), (0.2, Decision.REFUSE)])
def test_a_part_that_scores_below_the_band_asks_only_when_the_whole_question_would_not_refuse(whole, decision):
    judge = judge_by_question({TWO_PART: whole, "How much did the mission cost?": 0.1})
    verdict = SufficiencyGuard(judge=judge, answer_threshold=0.6, clarify_threshold=0.3).invoke(
        {"question": TWO_PART, "documents": DOCS}
    )
    assert verdict.decision is decision
    assert verdict.p_sufficient == pytest.approx(0.1, abs=1e-3)
    assert (verdict.rule == "partial") is (decision is Decision.CLARIFY)
