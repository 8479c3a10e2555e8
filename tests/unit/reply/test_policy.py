"""One reply policy: the same questions through `GuardedRAG` and through `GuardMiddleware` (a scripted agent
that writes the answer the pipeline's writer would) give the user the same decision, text and reason."""

from dataclasses import dataclass

import pytest
from langchain.agents import create_agent
from langchain_core.tools import create_retriever_tool

from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.prompts import ANSWER_INSTRUCTION, CLARIFY_INSTRUCTION, REFUSAL
from rag_guard.serving.middleware import GuardMiddleware
from tests.fakes import DOCS, FakeChatModel, FixedRetriever, ScriptedAgentModel, openai_logprobs

QUESTION = "When did Voyager 2 launch?"


@dataclass(frozen=True)
class Case:
    p_true: float | None
    """The verdict's P(True); None: the judge is down."""
    answer: str = "Voyager 2 launched on 20 August 1977 [1]."
    """What the pipeline's writer writes, and the agent answers."""
    quote: str = "I am not sure"
    """The answer-start call's few words: a passage span or not."""
    question: str = QUESTION


CASES = {
    "answer": Case(0.9),
    "quoted answer": Case(0.9, quote="20 August 1977"),
    "grounding withheld": Case(0.9, answer="It launched on 5 September 1979 [1]."),
    "restatement withheld": Case(0.9, answer="Voyager 2 did launch [1]."),
    "clarify": Case(0.55),
    "quote about another thing": Case(0.9, quote="20 August 1977", question="When did Voyager 3 launch?"),
    "written answer about another thing": Case(0.9, question="When did Voyager 3 launch?"),
    "off topic in the clarify band": Case(0.55, question="What is the capital of Australia?"),
    "refuse": Case(0.1),
    "outage": Case(None),
}
EXPECTED = {
    "answer": (Decision.ANSWER, "Voyager 2 launched on 20 August 1977 [1]."),
    "quoted answer": (Decision.ANSWER, '20 August 1977 [1]: "Voyager 2 launched on 20 August 1977."'),
    "grounding withheld": (Decision.CLARIFY, "The answer I drafted stated a number that the documents do not say"),
    "restatement withheld": (Decision.CLARIFY, "The documents I found"),
    "clarify": (Decision.CLARIFY, "The documents I found"),
    "quote about another thing": (Decision.CLARIFY, 'The documents I found do not say this about "Voyager 3".'),
    "written answer about another thing": (
        Decision.CLARIFY,
        'The documents I found do not say this about "Voyager 3".',
    ),
    "off topic in the clarify band": (Decision.REFUSE, REFUSAL),
    "refuse": (Decision.REFUSE, REFUSAL),
    "outage": (Decision.REFUSE, "I could not check this question against the documents"),
}


def model_for(case: Case) -> FakeChatModel:
    """The judge, which here also writes: the verdict, the quote, the answer, the unanswered part."""

    def reply(messages, kwargs):
        last = messages[-1].text
        if case.p_true is None and kwargs.get("max_tokens") == 1:
            raise ConnectionError("connection refused")
        if kwargs.get("max_tokens") == 1:
            return "True", openai_logprobs({"True": case.p_true, "False": 1 - case.p_true})
        if EXTRACT_INSTRUCTION in last:
            return case.quote, None
        if last == ANSWER_INSTRUCTION:
            return case.answer, None
        if last == CLARIFY_INSTRUCTION:
            return "the exact hour", None
        raise AssertionError(f"no reply scripted for {last[:60]!r}")

    return FakeChatModel(reply=reply)


def guard_of(model: FakeChatModel) -> SufficiencyGuard:
    return SufficiencyGuard(judge=model, answer_threshold=0.7, clarify_threshold=0.45)


def through_the_pipeline(case: Case) -> GuardedRAG:
    model = model_for(case)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard_of(model), answerer=model)


def through_an_agent(case: Case):
    search = create_retriever_tool(
        FixedRetriever(documents=DOCS), "search", "Search the articles.", response_format="content_and_artifact"
    )
    agent_model = ScriptedAgentModel(tool="search", answer=case.answer)
    return create_agent(agent_model, tools=[search], middleware=[GuardMiddleware(guard_of(model_for(case)))])


def agent_reply(final) -> tuple[Decision, str, str]:
    reply = final.response_metadata["rag_guard"]
    return Decision(reply["decision"]), final.content, reply["reason"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_pipeline_and_an_agent_give_the_same_reply(name):
    case = CASES[name]
    result = through_the_pipeline(case).invoke(case.question)
    mine = (result.decision, result.answer or result.message, result.reason)
    final = through_an_agent(case).invoke({"messages": [("user", case.question)]})["messages"][-1]
    assert agent_reply(final) == mine
    decision, opening = EXPECTED[name]
    assert mine[0] is decision and mine[1].startswith(opening)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_pipeline_and_an_agent_give_the_same_reply_when_awaited(name):
    case = CASES[name]
    result = await through_the_pipeline(case).ainvoke(case.question)
    final = (await through_an_agent(case).ainvoke({"messages": [("user", case.question)]}))["messages"][-1]
    mine = (result.decision, result.answer or result.message, result.reason)
    assert agent_reply(final) == mine
    synchronous = through_the_pipeline(case).invoke(case.question)
    assert (synchronous.decision, synchronous.answer or synchronous.message, synchronous.reason) == mine


def test_a_withheld_answer_records_why_in_both():
    case = CASES["restatement withheld"]
    result = through_the_pipeline(case).invoke(QUESTION)
    final = through_an_agent(case).invoke({"messages": [("user", QUESTION)]})["messages"][-1]
    assert result.answer_check is not None and result.answer_check.reason == "the answer only restates the question"
    assert final.response_metadata["rag_guard"]["answer_check"] == result.answer_check.model_dump(mode="json")
    assert "the answer was withheld" in result.reason


def test_when_the_unanswered_part_cannot_be_named_the_message_is_assembled_without_it():
    case = CASES["clarify"]
    pipeline = through_the_pipeline(case)
    fails_to_write = model_for(case)

    def broken(messages, kwargs):
        if messages[-1].text == CLARIFY_INSTRUCTION:
            raise ConnectionError("the writer went away")
        return model_for(case).reply(messages, kwargs)

    fails_to_write = FakeChatModel(reply=broken)
    result = pipeline.model_copy(update={"answerer": fails_to_write}).invoke(QUESTION)
    assert result.decision is Decision.CLARIFY
    assert result.message.startswith("The documents I found may not answer your question exactly as asked.")
    assert "Voyager 2 launched on 20 August 1977" in result.message


def test_an_answer_about_another_thing_records_what_its_passage_does_not_name():
    result = through_the_pipeline(CASES["quote about another thing"]).invoke("When did Voyager 3 launch?")
    assert result.answer_check is not None
    assert result.answer_check.off_subject == ["Voyager 3"] and result.answer_check.cited == [1]
    assert "does not name Voyager 3" in result.reason


def test_an_off_topic_question_in_the_clarify_band_is_refused_with_the_rule_as_its_reason():
    result = through_the_pipeline(CASES["off topic in the clarify band"]).invoke("What is the capital of Australia?")
    assert result.decision is Decision.REFUSE and result.message == REFUSAL
    assert "no retrieved sentence shares the question's content words" in result.reason


@pytest.mark.parametrize("name", ["quote about another thing", "off topic in the clarify band"])
async def test_a_stream_opens_with_the_decision_the_checks_reached(name):
    case = CASES[name]
    chunks = list(through_the_pipeline(case).stream(case.question))
    streamed = [chunk async for chunk in through_the_pipeline(case).astream(case.question)]
    decision, opening = EXPECTED[name]
    for got in (chunks, streamed):
        assert got[0].decision is decision
        assert "".join(chunk.message or chunk.answer or "" for chunk in got).startswith(opening)
