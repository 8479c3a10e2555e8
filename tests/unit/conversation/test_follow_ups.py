"""A follow-up through the pipeline and the server: rewritten once, judged as rewritten, the rewrite shown."""

import httpx
import pytest

from rag_guard.config import ServeSettings
from rag_guard.conversation.rewrite import REWRITE_INSTRUCTION
from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.pipeline import GuardedRAG
from rag_guard.serving.server import create_app
from tests.fakes import DOCS, FakeChatModel, FixedRetriever, openai_logprobs

HISTORY = [("user", "When did Voyager 2 launch?"), ("assistant", "On 20 August 1977 [1].")]


def model(rewrite: str | Exception = "When did Voyager 1 launch?") -> FakeChatModel:
    def reply(messages, kwargs):
        if messages[0].text == REWRITE_INSTRUCTION:
            if isinstance(rewrite, Exception):
                raise rewrite
            return rewrite, None
        if kwargs.get("max_tokens") == 1:
            return "True", openai_logprobs({"True": 0.9, "False": 0.1})
        return "Voyager 1 launched on 5 September 1977 [2].", None

    return FakeChatModel(reply=reply)


def rag(fake: FakeChatModel) -> GuardedRAG:
    guard = SufficiencyGuard(judge=fake, answer_threshold=0.7, clarify_threshold=0.45)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=fake)


def judged_questions(fake: FakeChatModel) -> list[str]:
    return [
        c["messages"][-1].text.rsplit("Question: ", 1)[-1].split("\n")[0]
        for c in fake.calls
        if c.get("max_tokens") == 1
    ]


def test_a_follow_up_is_judged_as_rewritten_and_says_what_it_was_read_as():
    fake = model()
    result = rag(fake).invoke({"question": "And Voyager 1?", "history": HISTORY})
    assert result.question == "When did Voyager 1 launch?" and result.asked == "And Voyager 1?"
    assert judged_questions(fake) == ["When did Voyager 1 launch?"]
    assert result.decision is Decision.ANSWER and result.timings.rewrite_s > 0


def test_a_first_turn_costs_no_rewrite():
    fake = model()
    result = rag(fake).invoke({"question": "When did Voyager 1 launch?", "history": []})
    assert result.asked is None and result.timings.rewrite_s == 0
    assert not any(c["messages"][0].text == REWRITE_INSTRUCTION for c in fake.calls)


async def test_a_failed_rewrite_judges_the_question_as_typed():
    fake = model(ConnectionError("gone"))
    result = await rag(fake).ainvoke({"question": "And Voyager 1?", "history": HISTORY})
    assert result.question == "And Voyager 1?" and result.asked is None
    assert result.p_sufficient == pytest.approx(0.9, abs=1e-3)


def test_an_ambiguous_reference_gets_a_question_back_without_retrieval_or_a_verdict():
    fake = model()
    history = [("user", "Which went farther, Voyager 1 or Pioneer 10?"), ("assistant", "Voyager 1 [1].")]
    result = rag(fake).invoke({"question": "When did it launch?", "history": history})
    assert result.decision is Decision.CLARIFY and result.p_sufficient is None
    assert result.message == "Which do you mean: Voyager 1 or Pioneer 10?"
    assert fake.calls == []


def test_a_reply_picking_a_part_of_the_question_is_judged_as_that_part_without_a_rewrite_call():
    fake = model()
    question = "When did Voyager 1 launch, and how much did the mission cost? (Only the launch.)"
    result = rag(fake).invoke({"question": question, "history": [], "chained": True})
    assert result.question == "When did Voyager 1 launch?" and result.asked == question
    assert judged_questions(fake) == ["When did Voyager 1 launch?"] and result.timings.rewrite_s == 0
    assert not any(c["messages"][0].text == REWRITE_INSTRUCTION for c in fake.calls)


async def test_the_server_sends_the_read_as_line_and_the_judged_question():
    messages = [{"role": r, "content": c} for r, c in HISTORY] + [{"role": "user", "content": "And Voyager 1?"}]
    app = create_app(rag(model()), ServeSettings(), ready=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        reply = (await http.post("/v1/chat/completions", json={"model": "x", "messages": messages})).json()
    assert reply["rag_guard"]["question"] == "When did Voyager 1 launch?"
    assert reply["rag_guard"]["asked"] == "And Voyager 1?"
    assert reply["choices"][0]["message"]["content"].startswith("Read as: When did Voyager 1 launch?\n\n")
