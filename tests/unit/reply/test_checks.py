import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage

from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.checks import read_check, written_check
from rag_guard.reply.policy import ReplySettings
from rag_guard.reply.prompts import ANSWER_INSTRUCTION, CLARIFY_INSTRUCTION, REFUSAL, VERIFY_INSTRUCTION
from tests.fakes import DOCS, FakeChatModel, FixedRetriever, judge_then_answer, openai_logprobs

ANSWER = "It launched on 20 August 1977 [1]."
UNANSWERED = "what did it cost"


def checked_pipeline(p_check: float | None, *, check_raises: bool = False, quote: str | None = None) -> GuardedRAG:
    """Gate passes (P(True) 0.9); the check after the answer gives `p_check` (None: a reply without logprobs)."""
    gate = judge_then_answer(0.9, answer=ANSWER)

    def reply(messages, kwargs):
        last = messages[-1].text
        if last == VERIFY_INSTRUCTION:
            if check_raises:
                raise ConnectionError("server went away")
            if p_check is None:
                return "True", None
            return ("True" if p_check >= 0.5 else "False"), openai_logprobs({"True": p_check, "False": 1 - p_check})
        if last == CLARIFY_INSTRUCTION:
            return UNANSWERED, None
        if quote is not None and EXTRACT_INSTRUCTION in last and kwargs.get("max_tokens") != 1:
            return quote, None
        return gate.reply(messages, kwargs)

    model = FakeChatModel(reply=reply)
    guard = SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3)
    return GuardedRAG(
        retriever=FixedRetriever(documents=DOCS),
        guard=guard,
        answerer=model,
        reply=ReplySettings(verify_answer=True, verify_threshold=0.5),
    )


def test_read_check_turns_the_token_into_a_probability_against_the_threshold():
    passed = read_check(
        AIMessage(content="True", response_metadata={"logprobs": openai_logprobs({"True": 0.8, "False": 0.2})}), 0.5
    )
    assert passed.passed and passed.p_supported == pytest.approx(0.8)
    failed = read_check(
        AIMessage(content="False", response_metadata={"logprobs": openai_logprobs({"True": 0.2, "False": 0.8})}), 0.5
    )
    assert not failed.passed and "0.200 < 0.5" in failed.reason


def test_a_passing_check_shows_the_answer_and_records_the_check():
    rag = checked_pipeline(0.9)
    result = rag.invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert result.answer == ANSWER
    assert result.answer_check.passed and result.answer_check.p_supported == pytest.approx(0.9)
    check = rag.answerer.calls[-1]["messages"]
    assert [m.text for m in check[-3:]] == [ANSWER_INSTRUCTION, ANSWER, VERIFY_INSTRUCTION]


def test_a_quoted_answer_is_held_to_the_model_s_check_too():
    passed = checked_pipeline(0.9, quote="20 August 1977").invoke("When did Voyager 2 launch?")
    assert passed.decision is Decision.ANSWER and passed.answer.startswith("20 August 1977 [1]")
    assert passed.answer_check.checked == ["20 August 1977"] and passed.answer_check.p_supported == pytest.approx(0.9)
    assert "quoted word for word" in passed.answer_check.reason
    failed = checked_pipeline(0.2, quote="20 August 1977").invoke("When did Voyager 2 launch?")
    assert failed.decision is Decision.CLARIFY and failed.answer is None
    assert failed.answer_check.draft.startswith("20 August 1977 [1]")


def test_the_check_continues_the_answer_prompt_whole():
    rag = checked_pipeline(0.9)
    rag.invoke("When did Voyager 2 launch?")
    answered, checked = rag.answerer.calls[-2]["messages"], rag.answerer.calls[-1]["messages"]
    assert checked[: len(answered)] == answered


def test_a_failing_check_replaces_the_answer_with_a_clarifying_message():
    result = checked_pipeline(0.2).invoke("When did Voyager 2 launch, and what did it cost?")
    assert result.decision is Decision.CLARIFY
    assert result.answer is None
    assert '"what did it cost?"' in result.message and "[1] (voyager.md)" in result.message
    assert result.verdict.decision is Decision.ANSWER  # the gate passed; the check withheld the answer
    assert "the answer was withheld" in result.reason


@pytest.mark.parametrize("fault", ["no logprobs", "call fails"])
def test_a_check_without_a_probability_withholds_the_answer(fault):
    rag = checked_pipeline(None, check_raises=fault == "call fails")
    result = rag.invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.REFUSE
    assert result.answer is None and result.message == REFUSAL
    assert result.answer_check.p_supported is None and not result.answer_check.passed


def test_streaming_holds_the_answer_until_the_check_and_the_first_chunk_has_the_final_decision():
    chunks = list(checked_pipeline(0.2).stream("When did Voyager 2 launch, and what did it cost?"))
    assert chunks[0].decision is Decision.CLARIFY
    assert all(chunk.answer is None for chunk in chunks)
    assert '"what did it cost?"' in "".join(chunk.message or "" for chunk in chunks)


async def test_async_stream_checks_the_same_way():
    passed = [chunk async for chunk in checked_pipeline(0.9).astream("When did Voyager 2 launch?")]
    assert passed[0].decision is Decision.ANSWER and "".join(c.answer or "" for c in passed) == ANSWER
    failed = await checked_pipeline(None).ainvoke("When did Voyager 2 launch?")
    assert failed.decision is Decision.REFUSE and failed.message == REFUSAL


def test_without_the_check_no_check_is_asked():
    rag = checked_pipeline(0.1)
    rag.reply = ReplySettings(verify_answer=False)
    result = rag.invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER and result.answer_check.p_supported is None  # grounding alone
    assert all(call["messages"][-1].text != VERIFY_INSTRUCTION for call in rag.answerer.calls)


def test_without_either_check_the_answer_streams_unchecked():
    rag = checked_pipeline(0.1)
    rag.reply = ReplySettings(verify_answer=False, grounding=False)
    result = rag.invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER and result.answer_check is None


def test_a_written_answer_is_first_held_to_saying_more_than_the_question_then_to_its_passages():
    passages = [Document(page_content="Voyager 2 launched on 20 August 1977.", metadata={"source": "voyager.md"})]
    question = "When was Voyager 2 launched?"
    assert written_check("Voyager 2 was launched [1].", question, passages).reason == (
        "the answer only restates the question"
    )
    assert written_check("It launched in 1981 [1].", question, passages).unsupported == ["1981"]
    assert written_check("It launched on 20 August 1977 [1].", question, passages).passed
