"""`GuardMiddleware`: the sufficiency gate for LangChain agents built with `create_agent`.

A RAG agent calls a retrieval tool, then answers. The middleware wraps each model call; when the reply is a
final answer (no tool calls) given after retrieval tool calls in the current turn, it asks the guard whether
the documents those calls returned answer the user's question; what the user then reads comes from the same
reply policy as `GuardedRAG`'s (`reply/policy.py`): the agent's answer (or a span quoted from a passage) once
it has passed the checks, a clarifying message, or the refusal. The reply, verdict included, rides in the final
message's `response_metadata["rag_guard"]`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from rag_guard.judging import Decision, SufficiencyGuard, Verdict, clean_question
from rag_guard.reply.answers import GuardedAnswer, merge_chunks
from rag_guard.reply.policy import ReplyPolicy, ReplySettings
from rag_guard.steps import Apply, Invoke, Steps, arun, gathered, run

log = logging.getLogger(__name__)


class GuardMiddleware(AgentMiddleware):
    """Gate an agent's final answer on the guard's verdict over what its retrieval tools returned.

    `retrieval_tools` names the tools whose results are the context (None: every tool). A retriever tool made
    with `response_format="content_and_artifact"` gives the guard each document and its source; otherwise a
    tool's text is one passage. A final answer given without any retrieval this turn passes unjudged unless
    `require_retrieval` is set, in which case it is refused. `reply` says how a verdict becomes the reply, as
    for `GuardedRAG` (`factory.reply_settings` reads it from config.yaml); the guard's judge quotes, checks
    and names the part a clarifying message asks about, continuing its own cached prompt.
    """

    def __init__(
        self,
        guard: SufficiencyGuard,
        retrieval_tools: Sequence[str] | None = None,
        *,
        require_retrieval: bool = False,
        reply: ReplySettings | None = None,
    ) -> None:
        super().__init__()
        self.guard = guard
        self.retrieval_tools = None if retrieval_tools is None else frozenset(retrieval_tools)
        self.require_retrieval = require_retrieval
        self.policy = ReplyPolicy(reply or ReplySettings(), guard, guard.judge)

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse | AIMessage:
        return run(self._gated(request, handler))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse | AIMessage:
        return await arun(self._gated(request, handler))

    def _gated(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Steps[ModelResponse | AIMessage]:
        """The agent's model call, then, for a final answer after retrieval, the verdict on it and the reply it
        calls for (one path for both kinds of call, `steps.py`)."""
        response = yield Apply(handler, request)
        judged = self._to_judge(request.messages, response)
        if not isinstance(judged, tuple):
            return judged
        question, documents, final = judged
        if not documents:
            verdict = _unretrieved()
        else:
            verdict = yield Invoke(self.guard, {"question": question, "documents": documents})
        chunks, _ = yield from gathered(self.policy.reply(question, verdict, written=final.text))
        return _with_reply(response, merge_chunks(chunks))

    # --- what to judge --------------------------------------------------------------------------------

    def _to_judge(
        self, messages: Sequence[AnyMessage], response: ModelResponse
    ) -> tuple[str, list[Document], AIMessage] | ModelResponse:
        """(question, retrieved documents, the final answer) when `response` is a final answer to judge (no
        documents: no retrieval while `require_retrieval` is set, which is refused); otherwise the response
        itself, returned at once (a tool call, or no retrieval to judge against)."""
        final = next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)
        turn = _current_turn(messages)
        if final is None or final.tool_calls or not turn:
            return response
        results = [m for m in turn if isinstance(m, ToolMessage) and self._is_retrieval(m)]
        if not results and not self.require_retrieval:
            return response
        question = clean_question(turn[0].text)
        return question, [doc for message in results for doc in _documents(message)], final

    def _is_retrieval(self, message: ToolMessage) -> bool:
        return self.retrieval_tools is None or message.name in self.retrieval_tools


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


def _with_reply(response: ModelResponse, reply: GuardedAnswer) -> ModelResponse:
    """The agent's final message as the user should read it: the reply's text (the agent's own answer when it
    passed as written), with the reply in its metadata (`rag_guard`: what `GuardedRAG` returns, as JSON)."""
    result = list(response.result)
    index = max(i for i, m in enumerate(result) if isinstance(m, AIMessage))
    final = result[index]
    metadata = {**final.response_metadata, "rag_guard": reply.model_dump(mode="json")}
    if reply.decision is Decision.ANSWER:
        result[index] = final.model_copy(update={"content": reply.answer or "", "response_metadata": metadata})
    else:
        result[index] = AIMessage(content=reply.message or "", response_metadata=metadata)
    return ModelResponse(result=result, structured_response=response.structured_response)
