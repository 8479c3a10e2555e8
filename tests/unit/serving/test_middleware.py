"""GuardMiddleware inside a real `create_agent` loop: a scripted agent model, a retriever tool over fixed
documents, and a fake judge whose P(True) is chosen."""

from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.tools import create_retriever_tool, tool

from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.reply.prompts import REFUSAL
from rag_guard.serving.middleware import GuardMiddleware
from tests.fakes import FakeChatModel, FixedRetriever, ScriptedAgentModel, judge_by_question, judge_then_answer

DOCS = [Document(page_content="Voyager 2 launched on 20 August 1977.", metadata={"source": "voyager.md"})]
AGENT_ANSWER = "Voyager 2 launched on 20 August 1977 [1]."
SEARCH = create_retriever_tool(
    FixedRetriever(documents=DOCS), "search", "Search the articles.", response_format="content_and_artifact"
)


def agent_with(judge, *, tool_name: str = "search", tools=(SEARCH,), **options):
    guard = SufficiencyGuard(judge=judge, answer_threshold=0.7, clarify_threshold=0.45)
    middleware = GuardMiddleware(guard, **options)
    model = ScriptedAgentModel(tool=tool_name, answer=AGENT_ANSWER)
    return create_agent(model, tools=list(tools), middleware=[middleware])


def final_message(agent, question: str = "When did Voyager 2 launch?"):
    return agent.invoke({"messages": [("user", question)]})["messages"][-1]


def test_a_sufficient_context_lets_the_agents_own_answer_through_with_the_verdict():
    judge = judge_then_answer(0.9)
    final = final_message(agent_with(judge))
    assert final.content == AGENT_ANSWER
    assert final.response_metadata["rag_guard"]["decision"] == "answer"
    judged = [call for call in judge.calls if call.get("max_tokens") == 1][-1]["messages"]
    assert "20 August 1977" in judged[-1].text and "When did Voyager 2 launch?" in judged[-1].text


def test_an_insufficient_context_replaces_the_answer_with_the_refusal():
    final = final_message(agent_with(judge_then_answer(0.2)))
    assert final.content == REFUSAL
    assert final.response_metadata["rag_guard"]["decision"] == "refuse"
    assert "1977" not in final.content


def test_the_middle_band_replaces_the_answer_with_the_clarifying_message():
    judge = judge_then_answer(0.55, answer="what did it cost")
    final = final_message(agent_with(judge), "When did Voyager 2 launch, and what did it cost?")
    assert '"what did it cost?"' in final.content and "[1] (voyager.md)" in final.content
    assert AGENT_ANSWER not in final.content
    assert final.response_metadata["rag_guard"]["decision"] == "clarify"


def test_a_two_part_questions_uncovered_part_is_named_without_asking_the_judge_to_write():
    question = "When did Voyager 2 launch, and how much did the mission cost?"
    judge = judge_by_question({question: 0.9, "How much did the mission cost?": 0.5})
    final = final_message(agent_with(judge), question)
    assert 'this part of your question: "How much did the mission cost?"' in final.content
    assert final.response_metadata["rag_guard"]["decision"] == "clarify"
    assert all(call.get("max_tokens") == 1 for call in judge.calls)


def test_a_judge_without_logprobs_fails_closed_and_says_what_failed():
    silent = FakeChatModel(reply=lambda messages, kwargs: ("True", None))
    final = final_message(agent_with(silent))
    assert final.content != REFUSAL and "What failed: no trustworthy probability" in final.content
    assert "1977" not in final.content
    verdict = final.response_metadata["rag_guard"]
    assert verdict["decision"] == "refuse" and verdict["p_sufficient"] is None
    assert verdict["error"]["kind"] == "no_probability"


def test_an_answer_without_retrieval_passes_unjudged_unless_retrieval_is_required():
    @tool
    def clock(query: str) -> str:
        """The time of day."""
        return "noon"

    judge = judge_then_answer(0.9)
    passed = final_message(agent_with(judge, tool_name="clock", tools=(SEARCH, clock), retrieval_tools=["search"]))
    assert passed.content == AGENT_ANSWER and "rag_guard" not in passed.response_metadata
    assert judge.calls == []
    strict = agent_with(
        judge, tool_name="clock", tools=(SEARCH, clock), retrieval_tools=["search"], require_retrieval=True
    )
    refused = final_message(strict)
    assert refused.content == REFUSAL
    assert "without calling a retrieval tool" in refused.response_metadata["rag_guard"]["reason"]


async def test_the_async_agent_is_gated_the_same_way():
    agent = agent_with(judge_then_answer(0.2))
    final = (await agent.ainvoke({"messages": [("user", "When did Voyager 2 launch?")]}))["messages"][-1]
    assert final.content == REFUSAL


def test_every_turn_is_judged_on_its_own_question():
    judge = judge_then_answer(0.9)
    agent = agent_with(judge)
    first = agent.invoke({"messages": [("user", "When did Voyager 2 launch?")]})
    again = agent.invoke({"messages": [*first["messages"], ("user", "So Voyager 2 left in 1977?")]})
    finals = [m for m in again["messages"] if m.type == "ai" and not m.tool_calls]
    assert [m.response_metadata["rag_guard"]["decision"] for m in finals] == ["answer", "answer"]
    last_judged = [call for call in judge.calls if call.get("max_tokens") == 1][-1]["messages"][-1].text
    assert "So Voyager 2 left in 1977?" in last_judged and "When did Voyager 2 launch?" not in last_judged


def test_an_agent_answer_about_another_thing_than_the_one_asked_is_withheld():
    """The agent answers with Voyager 2's date, from a passage that never names Voyager 1."""
    final = final_message(agent_with(judge_then_answer(0.9)), "When did Voyager 1 launch?")
    assert "20 August 1977" not in final.content.splitlines()[0]
    assert final.content.startswith('The documents I found do not say this about "Voyager 1".')
    record = final.response_metadata["rag_guard"]
    assert record["decision"] == "clarify"
    assert record["answer_check"]["off_subject"] == ["Voyager 1"] and record["answer_check"]["cited"] == [1]


def test_an_agent_answer_stating_what_the_documents_lack_is_withheld():
    guard = SufficiencyGuard(judge=judge_then_answer(0.9), answer_threshold=0.7, clarify_threshold=0.45)
    model = ScriptedAgentModel(tool="search", answer="Voyager 2 launched on 5 September 1979 [1].")
    agent = create_agent(model, tools=[SEARCH], middleware=[GuardMiddleware(guard)])
    final = final_message(agent)
    assert "1979" not in final.content and "September" not in final.content
    assert final.content.startswith("The answer I drafted stated a name and a number that the documents do not say")
    assert final.response_metadata["rag_guard"]["answer_check"]["unsupported"] == ["5", "1979", "September"]


def test_an_agent_answer_that_only_restates_the_question_is_replaced_by_a_clarifying_message():
    guard = SufficiencyGuard(judge=judge_then_answer(0.9), answer_threshold=0.7, clarify_threshold=0.45)
    model = ScriptedAgentModel(tool="search", answer="Voyager 2 did launch [1].")
    final = final_message(create_agent(model, tools=[SEARCH], middleware=[GuardMiddleware(guard)]))
    assert final.response_metadata["rag_guard"]["answer_check"]["reason"] == "the answer only restates the question"
    assert "20 August 1977" in final.content and "drafted" not in final.content


def test_the_agent_answer_carries_its_grounding_check():
    final = final_message(agent_with(judge_then_answer(0.9)))
    assert final.response_metadata["rag_guard"]["answer_check"]["passed"] is True
