"""invoke, ainvoke, stream and astream run one path (`steps.py`): the same verdict, timings and reply for
each way a question can end."""

import pytest

from rag_guard.judging import Decision
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.answers import GuardedAnswer, merge_chunks
from rag_guard.steps import Invoke, arun, iterate, run
from tests.fakes import DOCS, FakeChatModel, pipeline
from tests.unit.reply.test_checks import checked_pipeline

CASES = {
    "answer": (lambda: pipeline(0.9), Decision.ANSWER),
    "clarify": (lambda: pipeline(0.45), Decision.CLARIFY),
    "refuse": (lambda: pipeline(0.1), Decision.REFUSE),
    "answer check failed": (lambda: checked_pipeline(0.2), Decision.CLARIFY),
}
QUESTION = "When did Voyager 2 launch, and what did it cost?"


async def four_ways(rag: GuardedRAG) -> list[GuardedAnswer]:
    return [
        rag.invoke(QUESTION),
        await rag.ainvoke(QUESTION),
        merge_chunks(rag.stream(QUESTION)),
        merge_chunks([chunk async for chunk in rag.astream(QUESTION)]),
    ]


def comparable(result: GuardedAnswer) -> dict:
    """Everything but the seconds themselves: which stages were timed must agree, not how long they took."""
    data = result.model_dump(exclude={"timings"})
    data["verdict"].pop("guard_s")
    data["timed"] = {stage for stage, seconds in result.timings.model_dump().items() if seconds is not None}
    return data


@pytest.mark.parametrize("case", sorted(CASES))
async def test_every_entry_point_gives_the_same_verdict_timings_and_reply(case):
    build, decision = CASES[case]
    results = await four_ways(build())
    assert results[0].decision is decision
    first, *others = [comparable(result) for result in results]
    for other in others:
        assert other == first


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_reply_that_was_generated_reports_its_generation_time(case):
    build, decision = CASES[case]
    for result in await four_ways(build()):
        assert result.timings.retrieval_s is not None and result.timings.total_s is not None
        assert (result.timings.generation_s is not None) is (decision is not Decision.REFUSE)


async def test_the_guard_gives_the_same_verdict_either_way():
    guard = pipeline(0.9).guard
    asked = {"question": QUESTION, "documents": DOCS}
    sync, asynchronous = guard.invoke(asked), await guard.ainvoke(asked)
    assert sync.model_dump(exclude={"guard_s"}) == asynchronous.model_dump(exclude={"guard_s"})
    assert sync.prompt == asynchronous.prompt and sync.documents == asynchronous.documents == DOCS


def test_a_failed_call_is_thrown_into_the_steps_so_their_own_try_handles_it():
    def down(messages, kwargs):
        raise ConnectionError("server went away")

    def steps():
        try:
            yield Invoke(FakeChatModel(reply=down), "hello")
        except ConnectionError as exc:
            return f"handled: {exc}"
        return "not reached"

    assert run(steps()) == "handled: server went away"


async def test_async_steps_return_what_the_steps_return():
    def steps():
        reply = yield Invoke(FakeChatModel(reply=lambda messages, kwargs: ("pong", None)), "ping")
        return reply.text

    assert await arun(steps()) == run(steps()) == "pong"


def test_steps_that_yield_output_are_read_with_iterate_not_run():
    def steps():
        yield "a chunk"

    assert list(iterate(steps())) == ["a chunk"]
    with pytest.raises(TypeError, match="read them with iterate"):
        run(steps())
