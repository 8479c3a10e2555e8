"""`GuardMiddleware`: the sufficiency gate for LangChain agents built with `create_agent`.

A RAG agent calls a retrieval tool, then answers. The middleware wraps each model call; when the reply is a
final answer (no tool calls) given after retrieval tool calls in the current turn, it asks the guard whether
the documents those calls returned answer the user's question, and lets the answer through, replaces it with
a clarifying question, or refuses, exactly as `GuardedRAG` does. The verdict rides in the final message's
`response_metadata["rag_guard"]`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from rag_guard.judging import AnswerCheck, Decision, SufficiencyGuard, Verdict
from rag_guard.judging.answer_check import written_check
from rag_guard.judging.clarify import clarifying_message, unsupported_message
from rag_guard.judging.prompts import REFUSAL, refusal_message, reply_prompt
from rag_guard.steps import Apply, Invoke, Steps, arun, run

log = logging.getLogger(__name__)


class GuardMiddleware(AgentMiddleware):
    """Gate an agent's final answer on the guard's verdict over what its retrieval tools returned.

    `retrieval_tools` names the tools whose results are the context (None: every tool). A retriever tool made
    with `response_format="content_and_artifact"` gives the guard each document and its source; otherwise a
    tool's text is one passage. A final answer given without any retrieval this turn passes unjudged unless
    `require_retrieval` is set, in which case it is refused.
    """

    def __init__(
        self,
        guard: SufficiencyGuard,
        retrieval_tools: Sequence[str] | None = None,
        *,
        require_retrieval: bool = False,
        refusal: str = REFUSAL,
        grounding: bool = True,
    ) -> None:
        super().__init__()
        self.guard = guard
        self.retrieval_tools = None if retrieval_tools is None else frozenset(retrieval_tools)
        self.require_retrieval = require_retrieval
        self.refusal = refusal
        self.grounding = grounding

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse | AIMessage:
        return run(self._gated(request, handler))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse | AIMessage:
        return await arun(self._gated(request, handler))

    def _gated(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Steps[ModelResponse | AIMessage]:
        """The agent's model call, then, for a final answer after retrieval, the guard's verdict on it (one
        path for both kinds of call, `steps.py`)."""
        response = yield Apply(handler, request)
        judged = self._to_judge(request.messages, response)
        if not isinstance(judged, tuple):
            return judged
        question, documents = judged
        verdict = yield Invoke(self.guard, {"question": question, "documents": documents})
        if verdict.decision is Decision.ANSWER:
            return self._grounded(question, response, verdict)
        if verdict.decision is Decision.REFUSE:
            return self._refused(verdict)
        if (part := verdict.uncovered_part) is None:
            try:  # the judge's own prompt, continued (its cache serves it), asks what the user should narrow
                part = (yield Invoke(self.guard.judge, reply_prompt(verdict.prompt, Decision.CLARIFY))).text
            except Exception as exc:  # any failure of the judge: refuse rather than pass the ungated answer
                log.error("the clarifying question could not be written, refusing: %s", exc)
                return self._refused(verdict)
        text = clarifying_message(question, verdict.documents, part)
        return AIMessage(content=text, response_metadata={"rag_guard": _dump(verdict)})

    # --- what to judge --------------------------------------------------------------------------------

    def _to_judge(
        self, messages: Sequence[AnyMessage], response: ModelResponse
    ) -> tuple[str, list[Document]] | ModelResponse | AIMessage:
        """(question, retrieved documents) when `response` is a final answer to judge; otherwise what to
        return at once: the response itself (a tool call, or no retrieval to judge against), or a refusal
        (no retrieval while `require_retrieval` is set)."""
        final = next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)
        turn = _current_turn(messages)
        if final is None or final.tool_calls or not turn:
            return response
        results = [m for m in turn if isinstance(m, ToolMessage) and self._is_retrieval(m)]
        if not results:
            return self._refused(_unretrieved()) if self.require_retrieval else response
        return turn[0].text, [doc for message in results for doc in _documents(message)]

    def _is_retrieval(self, message: ToolMessage) -> bool:
        return self.retrieval_tools is None or message.name in self.retrieval_tools

    # --- the outcomes ---------------------------------------------------------------------------

    def _grounded(self, question: str, response: ModelResponse, verdict: Verdict) -> ModelResponse | AIMessage:
        """The agent's answer when it says more than the question and the passages state its numbers, names and
        quoted phrases (or `grounding` is off); else what they say closest to the question, in its place."""
        final = next(m for m in reversed(response.result) if isinstance(m, AIMessage))
        check = written_check(final.text, question, verdict.documents) if self.grounding else None
        if check is None or check.passed:
            return _with_verdict(response, verdict, check)
        log.info("the agent's answer fails the grounding check, withholding it: %s", check.reason)
        text = (
            unsupported_message(question, verdict.documents, check.unsupported)
            if check.unsupported
            else clarifying_message(question, verdict.documents, verdict.uncovered_part or "")
        )
        return AIMessage(content=text, response_metadata={"rag_guard": _dump(verdict, check)})

    def _refused(self, verdict: Verdict) -> AIMessage:
        """The refusal; when nothing could be judged (an outage), what failed instead of the refusal."""
        log.info("guard refused the agent's answer: %s", verdict.reason)
        return AIMessage(
            content=refusal_message(verdict.error, self.refusal), response_metadata={"rag_guard": _dump(verdict)}
        )


def _current_turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The messages from the user's last message on (the question first)."""
    last_user = next((i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)), None)
    return [] if last_user is None else list(messages[last_user:])


def _documents(message: ToolMessage) -> list[Document]:
    artifact: Any = message.artifact
    if isinstance(artifact, list) and artifact and all(isinstance(doc, Document) for doc in artifact):
        return list(artifact)
    return [Document(page_content=message.text, metadata={"source": message.name or "tool"})]


def _unretrieved() -> Verdict:
    return Verdict(
        decision=Decision.REFUSE,
        p_sufficient=None,
        reason="refused: the agent answered without calling a retrieval tool (require_retrieval is set)",
    )


def _dump(verdict: Verdict, check: AnswerCheck | None = None) -> dict[str, Any]:
    """The verdict as the metadata carries it, with the grounding check of the answer when there was one."""
    dumped = verdict.model_dump(mode="json")
    return {**dumped, "answer_check": check.model_dump(mode="json")} if check else dumped


def _with_verdict(response: ModelResponse, verdict: Verdict, check: AnswerCheck | None) -> ModelResponse:
    """The agent's own answer, with the verdict (and its grounding check) in its metadata."""
    result = list(response.result)
    index = max(i for i, m in enumerate(result) if isinstance(m, AIMessage))
    answer = result[index]
    result[index] = answer.model_copy(
        update={"response_metadata": {**answer.response_metadata, "rag_guard": _dump(verdict, check)}}
    )
    return ModelResponse(result=result, structured_response=response.structured_response)
