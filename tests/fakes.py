"""Test doubles: a chat model that replies with chosen logprobs, an agent model that follows a script, and a
retriever over fixed documents."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from rag_guard.evaluation.evaluate import EvalReport, EvalRow
from rag_guard.evaluation.metrics import gate_quality
from rag_guard.judging import SufficiencyGuard
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION, MISSING_INSTRUCTION
from rag_guard.pipeline import GuardedRAG


def openai_logprobs(alternatives: dict[str, float]) -> dict[str, Any]:
    """OpenAI-shaped logprobs for one position; `alternatives` maps token -> linear probability."""
    ranked = sorted(alternatives.items(), key=lambda kv: kv[1], reverse=True)
    top = [{"token": t, "logprob": math.log(p) if p > 0 else -math.inf, "bytes": list(t.encode())} for t, p in ranked]
    return {"content": [{**top[0], "top_logprobs": top}]}


class FakeChatModel(BaseChatModel):
    """Replies with `reply(messages, kwargs)`: (text, logprobs or None); records every call's options."""

    reply: Callable[[list[BaseMessage], dict[str, Any]], tuple[str, Any]]
    calls: list[dict[str, Any]] = Field(default_factory=list)
    hidden: dict[int, list[float]] = Field(default_factory=dict)
    """States a call asking for `hidden_layers` gets back (those it asks for that are here), like ChatLlamaCpp."""
    hidden_by_instruction: dict[str, dict[int, list[float]]] = Field(default_factory=dict)
    """Other states for a call whose last message contains one of these instructions."""

    @property
    def _llm_type(self) -> str:
        return "fake"

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        """About four characters a token, like English text under most tokenisers."""
        return sum(len(m.text) for m in messages) // 4

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append({"messages": messages, **kwargs})
        text, logprobs = self.reply(messages, kwargs)
        metadata: dict[str, Any] = {"logprobs": logprobs} if logprobs is not None else {}
        if kwargs.get("hidden_layers"):
            own = [states for text, states in self.hidden_by_instruction.items() if text in messages[-1].text]
            hidden = own[0] if own else self.hidden
            metadata["hidden_states"] = {n: hidden[n] for n in kwargs["hidden_layers"] if n in hidden}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, response_metadata=metadata))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        result = self._generate(messages, stop, run_manager, **kwargs)
        for word in result.generations[0].message.text.split(" "):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))


def judge_then_answer(
    p_true: float, answer: str = "The answer [1].", p_missing: float | None = None, p_extract: float = 1.0
) -> FakeChatModel:
    """A model that answers the one-token guard call with P(True)=p_true, the reversed "missing?" question
    with P(True)=p_missing, the extractive question with an answer start of probability p_extract (the rest
    declining), and other calls with `answer`."""

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> tuple[str, Any]:
        if kwargs.get("max_tokens") == 1 and EXTRACT_INSTRUCTION in messages[-1].text:
            return "Aug", openai_logprobs({"Aug": p_extract, "un": 1 - p_extract})
        if kwargs.get("max_tokens") == 1:
            reversed_question = MISSING_INSTRUCTION in messages[-1].text
            p = (p_missing if reversed_question else p_true) or 0.0
            logprobs = openai_logprobs({"True": p, "False": 1 - p, "The": 1e-4})
            return ("True" if p >= 0.5 else "False"), logprobs
        return answer, None

    return FakeChatModel(reply=reply)


def judge_by_question(p_true: dict[str, float], default: float = 0.9, answer: str = "The answer [1].") -> FakeChatModel:
    """A model whose one-token guard call gives P(True) by the question its prompt asks (`p_true`, else
    `default`), and whose other calls reply `answer`: a two-part question's parts can score apart."""

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> tuple[str, Any]:
        if kwargs.get("max_tokens") != 1:
            return answer, None
        asked = messages[-1].text.rsplit("Question: ", 1)[-1].split("\n\n", 1)[0]
        p = p_true.get(asked, default)
        return ("True" if p >= 0.5 else "False"), openai_logprobs({"True": p, "False": 1 - p})

    return FakeChatModel(reply=reply)


class FixedRetriever(BaseRetriever):
    documents: list[Document]
    fail: bool = False

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.fail:
            raise ConnectionError("chroma is down")
        return list(self.documents)


class ScriptedAgentModel(BaseChatModel):
    """A tool-calling agent model without a model: to the user's question it calls `tool` with the question
    as the query; once the tool has replied, it answers `answer`. Stands in for a real tool-calling model,
    which these machines cannot run."""

    tool: str
    answer: str

    @property
    def _llm_type(self) -> str:
        return "scripted-agent"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedAgentModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, HumanMessage):
            call = {"name": self.tool, "args": {"query": last.text}, "id": f"call_{len(messages)}"}
            reply = AIMessage(content="", tool_calls=[call])
        elif isinstance(last, ToolMessage):
            reply = AIMessage(content=self.answer)
        else:
            raise AssertionError(f"the script has no step after a {type(last).__name__}")
        return ChatResult(generations=[ChatGeneration(message=reply)])


DOCS = [
    Document(page_content="Voyager 2 launched on 20 August 1977.", metadata={"source": "voyager.md", "chunk_index": 0}),
    Document(
        page_content="Voyager 1 launched on 5 September 1977.", metadata={"source": "voyager.md", "chunk_index": 1}
    ),
]


def pipeline(p_true: float, *, fail_retrieval: bool = False) -> GuardedRAG:
    model = judge_then_answer(p_true, answer="It launched on 20 August 1977 [1].")
    guard = SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS, fail=fail_retrieval), guard=guard, answerer=model)


def report_of(rows: list[EvalRow], answer_threshold: float = 0.7, clarify_threshold: float = 0.45) -> EvalReport:
    """The eval report `rows` add up to, as `rag-guard eval` would print it (the gate's figures, latency)."""
    quality = gate_quality(
        [r.p_sufficient for r in rows],
        [r.answerable for r in rows],
        [r.decision for r in rows],
        answer_threshold,
        clarify_threshold,
    )
    latencies = [r.guard_s for r in rows if r.guard_s is not None]
    return EvalReport(
        **quality.model_dump(),
        guard_latency_s_mean=sum(latencies) / len(latencies) if latencies else None,
        guard_latency_s_p95=max(latencies) if latencies else None,
        rows=rows,
    )
