"""Single-pass mode: the verdict is the first generated token, and generation stops unless the gate passes."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.prompts import SINGLE_PASS_INSTRUCTION
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.answer_text import VerdictLead
from rag_guard.reply.prompts import CLARIFY_INSTRUCTION
from tests.fakes import DOCS, FixedRetriever, openai_logprobs

ANSWER = ["Voyager", " 2", " launched", " on", " 20", " August", " 1977", " [1]."]


class FirstTokenModel(BaseChatModel):
    """Streams `first` (with logprobs over True/False) then the words of an answer, counting what it generated.

    Only the single-pass prompt gets the verdict token; a second (answer or clarify) call gets words alone.
    """

    p_true: float
    first: str = "True"
    logprobs: bool = True
    generated: list[str] = Field(default_factory=list)
    calls: list[dict[str, Any]] = Field(default_factory=list)
    closed: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake-first-token"

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        return sum(len(m.text) for m in messages) // 4

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        chunks = list(self._stream(messages, stop, run_manager, **kwargs))
        merged = sum(chunks[1:], chunks[0])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=merged.text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self.calls.append({"messages": messages, **kwargs})
        try:
            yield ChatGenerationChunk(message=AIMessageChunk(content=""))  # a server's opening role chunk
            if messages[-1].text.endswith(SINGLE_PASS_INSTRUCTION):
                alternatives = {"True": self.p_true, "False": 1 - self.p_true, "Based": 0.5}
                metadata = {"logprobs": openai_logprobs(alternatives)} if self.logprobs else {}
                self.generated.append(self.first)
                yield ChatGenerationChunk(message=AIMessageChunk(content=self.first, response_metadata=metadata))
            for word in ["\n", *ANSWER]:
                self.generated.append(word)
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
        finally:
            self.closed += 1


def single_pass(model: FirstTokenModel) -> GuardedRAG:
    guard = SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=model, single_pass=True)


def test_a_passing_verdict_lets_the_same_generation_become_the_answer():
    model = FirstTokenModel(p_true=0.9)
    result = single_pass(model).invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert result.answer == "Voyager 2 launched on 20 August 1977 [1]."
    assert len(model.calls) == 1
    assert model.calls[0]["messages"][-1].text.endswith(SINGLE_PASS_INSTRUCTION)
    assert model.calls[0]["logprobs"] is True


def test_a_refusal_stops_the_generation_after_its_first_token():
    model = FirstTokenModel(p_true=0.1, first="False")
    result = single_pass(model).invoke("Who won the 2014 FIFA World Cup?")
    assert result.decision is Decision.REFUSE
    assert result.answer is None
    assert model.generated == ["False"]
    assert model.closed == 1
    assert len(model.calls) == 1


def test_the_middle_band_stops_the_generation_and_asks_with_a_second_call():
    model = FirstTokenModel(p_true=0.45, first="False")
    result = single_pass(model).invoke("When did it launch?")
    assert result.decision is Decision.CLARIFY
    assert result.message
    assert len(model.calls) == 2
    assert model.calls[1]["messages"][-1].text.endswith(CLARIFY_INSTRUCTION)
    assert model.generated[0] == "False" and model.generated[1] == "\n"  # the second call's first word


def test_an_answer_verdict_on_another_first_token_takes_a_fresh_answer_call():
    """P(True) over True/False passes, but the model began with "Based": its text is not an answer."""
    model = FirstTokenModel(p_true=0.9, first="Based")
    result = single_pass(model).invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert len(model.calls) == 3  # the verdict, the quote (no span here), the fresh answer
    assert result.answer == "Voyager 2 launched on 20 August 1977 [1]."


def test_a_stream_without_logprobs_refuses_and_answers_nothing():
    model = FirstTokenModel(p_true=0.99, logprobs=False)
    result = single_pass(model).invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.REFUSE
    assert "no trustworthy probability" in result.verdict.reason
    assert result.answer is None
    assert model.generated == ["True"]


def test_a_model_that_fails_before_its_first_token_refuses():
    class Down(FirstTokenModel):
        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            raise ConnectionError("connection refused")
            yield  # pragma: no cover

    result = single_pass(Down(p_true=0.99)).invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.REFUSE
    assert "cannot reach" in result.verdict.reason


async def test_async_stream_yields_the_verdict_first_then_the_answer():
    model = FirstTokenModel(p_true=0.9)
    chunks = [c async for c in single_pass(model).astream("When did Voyager 2 launch?")]
    assert chunks[0].verdict is not None and chunks[0].answer is None
    assert "".join(c.answer or "" for c in chunks[1:]) == "Voyager 2 launched on 20 August 1977 [1]."


async def test_async_refusal_stops_the_generation():
    """(LangChain's default async stream closes the fake's generator only when it is collected; the embedded
    model closes its own at once, which tests/integration/test_embedded_model.py checks.)"""
    model = FirstTokenModel(p_true=0.1, first="False")
    result = await single_pass(model).ainvoke("Who won the 2014 FIFA World Cup?")
    assert result.decision is Decision.REFUSE
    assert model.generated == ["False"]


async def test_abatch_keeps_to_the_pipeline_s_concurrency_bound():
    running, peak = 0, 0

    class SlowRetriever(FixedRetriever):
        async def _aget_relevant_documents(self, query, *, run_manager):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1
            return list(self.documents)

    model = FirstTokenModel(p_true=0.1, first="False")
    guard = SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3)
    rag = GuardedRAG(retriever=SlowRetriever(documents=DOCS), guard=guard, answerer=model, max_concurrency=2)
    results = await rag.abatch([f"question {i}?" for i in range(6)])
    assert [r.question for r in results] == [f"question {i}?" for i in range(6)]
    assert peak == 2
    await rag.abatch(["a?", "b?", "c?"], config={"max_concurrency": 3})
    assert peak == 3


@pytest.mark.parametrize("p_true", [0.05, 0.45, 0.95])
def test_stream_and_invoke_agree(p_true):
    rag = single_pass(FirstTokenModel(p_true=p_true, first="True" if p_true > 0.5 else "False"))
    streamed = list(rag.stream("When did Voyager 2 launch?"))
    merged = sum(streamed[1:], streamed[0]).to_answer()
    assert merged.model_dump(exclude={"verdict", "timings"}) == rag.invoke("When did Voyager 2 launch?").model_dump(
        exclude={"verdict", "timings"}
    )


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["\n", "Voyager", " 2", " launched."], "Voyager 2 launched."),
        (["True", ".", " Voyager", " 2"], "Voyager 2"),
        (["false", ":", "\n", "Which", " probe?"], "Which probe?"),
        (["Truly", " remarkable."], "Truly remarkable."),
        (["Tru"], "Tru"),
        (["The answer", " is 1977."], "The answer is 1977."),
    ],
)
def test_verdict_lead_drops_only_a_leading_verdict_word(pieces, expected):
    lead = VerdictLead()
    assert "".join(lead.feed(p) for p in pieces) + lead.flush() == expected
