"""`rag-guard serve`: guarded answers behind the OpenAI chat API, so any OpenAI client or chat front end works.

Routes: POST /v1/chat/completions (plain and server-sent events), GET /v1/models, POST /v1/guard (a verdict
for documents the caller retrieved), GET /healthz (the process is up), GET /readyz (the store answers and
the judge's server is reachable).
Every reply carries the guard's outcome in an extra top-level `rag_guard` object (in the last event when
streaming); `choices[0].message.content` is the answer, the clarifying question or the refusal.

Admission is bounded: `running` requests use the model at once (1 for the embedded model) and up to
`queue_size` more wait; beyond that the server answers 503 with Retry-After instead of queueing without end.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Literal

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_guard.config import ServeSettings
from rag_guard.conversation.turns import CLARIFY_MARK, Turn, conversation_of, mark_clarifying
from rag_guard.errors import InvalidQuestionError, ModelUnavailableError, RagGuardError, ServerBusy
from rag_guard.judging import Decision, clean_question
from rag_guard.models.failures import explain_failure, target_of
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.answers import GuardedAnswer, GuardedAnswerChunk

log = logging.getLogger(__name__)

CHAT_PAGE = resources.files("rag_guard.serving.page").joinpath("index.html").read_text(encoding="utf-8")
"""The chat page at `/`: one file, its script and style inline, nothing fetched from elsewhere."""

ReadyCheck = Callable[[], Awaitable[str]]
"""Raises when the server cannot answer questions; returns a short description when it can."""


# --- request bodies ---------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        """String content, or the text parts of a multi-part content list."""
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; sampling options are accepted and ignored (config.yaml sets them)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class GuardDocument(BaseModel):
    text: str = Field(min_length=1)
    source: str | None = None


class GuardRequest(BaseModel):
    question: str
    documents: list[GuardDocument] = Field(max_length=50)


# --- admission ------------------------------------------------------------------------------------------


class Admission:
    """At most `running` requests at the model, at most `waiting` more queued; the rest are turned away."""

    def __init__(self, running: int, waiting: int) -> None:
        self._slots = asyncio.Semaphore(running)
        self._capacity = running + waiting
        self.inside = 0

    def check(self) -> None:
        if self.inside >= self._capacity:
            raise ServerBusy

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.check()
        self.inside += 1
        try:
            async with self._slots:
                yield
        finally:
            self.inside -= 1


# --- limits ---------------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for request bodies over `limit` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body is larger than {self.limit} bytes (serve.max_request_bytes)."
        await error("request_too_large", message, 413)(scope, receive, send)


def error(kind: str, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error body shaped like OpenAI's, which its clients turn into typed exceptions."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


# --- replies --------------------------------------------------------------------------------------------


def guard_report(result: GuardedAnswer, thresholds: dict[str, float]) -> dict[str, Any]:
    """The `rag_guard` object: what the guard decided, against which thresholds, from which passages."""
    return {
        "decision": result.decision.value,
        "p_sufficient": result.p_sufficient,
        "question": result.question,
        "asked": result.asked,
        "thresholds": thresholds,
        "sources": [source.model_dump(mode="json") for source in result.sources],
        "cited": result.cited,
        "reason": result.reason,
        "answer_check": result.answer_check.model_dump(mode="json") if result.answer_check else None,
        "error": result.error.model_dump(mode="json") if result.error else None,
        "timings": result.timings.model_dump(mode="json"),
        "verdict": result.verdict.model_dump(mode="json"),
    }


def reply_text(result: GuardedAnswer) -> str:
    """What the assistant says: the "Read as" line for a rewritten follow-up, then the answer or message; a
    clarifying message ends with `CLARIFY_MARK`, so a reply to it is chained to its question."""
    text = (result.answer if result.answer is not None else result.message) or ""
    if result.decision is Decision.CLARIFY:
        text = mark_clarifying(text)
    return read_as_line(result.question) + text if result.asked is not None else text


def read_as_line(question: str) -> str:
    return f"Read as: {question}\n\n"


def verdict_first(head: GuardedAnswerChunk, thresholds: dict[str, float]) -> dict[str, Any]:
    """The stream's first event's `rag_guard`: the verdict, before any text."""
    return {
        "decision": head.decision.value if head.decision else None,
        "p_sufficient": head.p_sufficient,
        "thresholds": thresholds,
        "question": head.question,
        "asked": head.asked,
        "sources": [source.model_dump(mode="json") for source in head.sources or []],
        "reason": head.reason,
    }


class _Completion:
    """Ids and envelopes shared by one completion's body or events."""

    def __init__(self, model: str, thresholds: dict[str, float]) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.thresholds = thresholds

    def body(self, result: GuardedAnswer) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply_text(result)},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "rag_guard": guard_report(result, self.thresholds),
        }

    def event(self, delta: dict[str, Any], finish: Literal["stop"] | None = None, **extra: Any) -> str:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(chunk)}\n\n"


def _sse_error(kind: str, message: str) -> str:
    return f"data: {json.dumps({'error': {'message': message, 'type': kind, 'param': None, 'code': None}})}\n\n"


# --- the app --------------------------------------------------------------------------------------------


def create_app(rag: GuardedRAG, settings: ServeSettings, ready: ReadyCheck | None = None) -> FastAPI:
    """The app around a built pipeline (models loaded, store opened): tests pass fakes, the CLI the real one."""
    app = FastAPI(title="rag_guard", summary="Guarded RAG answers behind the OpenAI chat API.")
    admission = Admission(running=rag.max_concurrency or 1, waiting=settings.queue_size)
    token = os.environ.get(settings.api_key_env, "").strip() or None
    busy_headers = {"Retry-After": str(settings.retry_after_s)}
    ready = ready or all_ready(store_ready(rag), judge_ready(rag))
    thresholds = {"answer": rag.guard.answer_threshold, "clarify": rag.guard.clarify_threshold}

    async def authorised(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise _Unauthorised

    @app.exception_handler(_Unauthorised)
    async def _unauthorised(request: Request, exc: _Unauthorised) -> JSONResponse:
        message = f"Missing or wrong bearer token: send `Authorization: Bearer <${settings.api_key_env}>`."
        return error("authentication_error", message, 401, {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body")
        return error("invalid_request_error", f"{where}: {first['msg']}", 400)

    @app.exception_handler(InvalidQuestionError)
    async def _bad_question(request: Request, exc: InvalidQuestionError) -> JSONResponse:
        return error("invalid_request_error", str(exc), 400)

    @app.exception_handler(ServerBusy)
    async def _busy(request: Request, exc: ServerBusy) -> JSONResponse:
        message = "Every model slot is busy and the queue is full; retry after the Retry-After seconds."
        return error("server_busy", message, 503, busy_headers)

    @app.exception_handler(TimeoutError)
    async def _timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        message = f"No reply within {settings.request_timeout_s:g} s (serve.request_timeout_s)."
        return error("timeout", message, 504)

    @app.exception_handler(RagGuardError)
    async def _failed(request: Request, exc: RagGuardError) -> JSONResponse:
        return error("server_error", str(exc), 502)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        """The chat page: each reply with its decision, score against the thresholds, question judged and
        passages, everything served from the package."""
        return HTMLResponse(CHAT_PAGE)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            detail = await asyncio.wait_for(ready(), timeout=10)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": f"{type(exc).__name__}: {exc}"}, 503)
        return JSONResponse({"status": "ready", "detail": detail})

    @app.get("/v1/models", dependencies=[Depends(authorised)])
    async def models() -> dict[str, Any]:
        entry = {"id": settings.model_name, "object": "model", "created": 0, "owned_by": "rag_guard"}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/guard", dependencies=[Depends(authorised)])
    async def guard(body: GuardRequest) -> JSONResponse:
        documents = [
            Document(page_content=d.text, metadata={"source": d.source or f"document {i}"})
            for i, d in enumerate(body.documents, start=1)
        ]
        async with asyncio.timeout(settings.request_timeout_s), admission.slot():
            verdict = await rag.guard.ainvoke({"question": body.question, "documents": documents})
        return JSONResponse(verdict.model_dump(mode="json"))

    @app.post("/v1/chat/completions", dependencies=[Depends(authorised)], response_model=None)
    async def chat(body: ChatCompletionRequest) -> JSONResponse | StreamingResponse:
        conversation = conversation_of([Turn(m.role, m.text) for m in body.messages])
        question = {
            "question": clean_question(conversation.question),
            "history": conversation.history,
            "chained": conversation.chained,
        }
        completion = _Completion(settings.model_name, thresholds)
        admission.check()  # turn a full server away with a status, before a stream has begun
        if body.stream:
            return StreamingResponse(_events(question, completion), media_type="text/event-stream")
        async with asyncio.timeout(settings.request_timeout_s), admission.slot():
            result = await rag.ainvoke(question)
        return JSONResponse(completion.body(result))

    async def _events(question: dict[str, Any], completion: _Completion) -> AsyncIterator[str]:
        """The verdict first (decision, score, the question judged, the sources), then the reply's text as
        the checks release it, then the whole `rag_guard` object with the last event."""
        try:
            async with asyncio.timeout(settings.request_timeout_s), admission.slot():
                merged: GuardedAnswerChunk | None = None
                opened = False
                async for piece in rag.astream(question):
                    merged = piece if merged is None else merged + piece
                    if not opened and merged.decision is not None:
                        opened = True
                        lead = read_as_line(merged.question or "") if merged.asked is not None else ""
                        yield completion.event(
                            {"role": "assistant", "content": lead},
                            rag_guard=verdict_first(merged, completion.thresholds),
                        )
                    if opened and (text := (piece.answer or piece.message)):
                        yield completion.event({"content": text})
                assert merged is not None and opened  # the pipeline always yields its verdict
                result = merged.to_answer()
                if result.decision is Decision.CLARIFY:
                    yield completion.event({"content": CLARIFY_MARK})
                yield completion.event({}, "stop", rag_guard=guard_report(result, completion.thresholds))
        except ServerBusy:
            yield _sse_error("server_busy", "Every model slot is busy and the queue is full; retry later.")
        except TimeoutError:
            yield _sse_error("timeout", f"No reply within {settings.request_timeout_s:g} s (serve.request_timeout_s).")
        except RagGuardError as exc:
            yield _sse_error("server_error", str(exc))
        yield "data: [DONE]\n\n"

    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    return app


class _Unauthorised(Exception):
    pass


def store_ready(rag: GuardedRAG) -> ReadyCheck:
    """Readiness: the retriever's Chroma collection answers a count (on disk or over HTTP)."""

    async def check() -> str:
        store = getattr(rag.retriever, "store", None)
        if store is None:
            return "retriever without a Chroma store"
        chunks = await asyncio.to_thread(store._collection.count)
        if not chunks:
            raise RuntimeError("the collection is empty: run `rag-guard ingest`")
        return f"{chunks} chunks"

    return check


def judge_ready(rag: GuardedRAG) -> ReadyCheck:
    """Readiness: the judge's server answers HTTP at all (any status will do: a 401 or 404 still means it is
    up); an in-process judge is always ready. Unready while it is down, so a balancer stops sending questions
    that could only be refused for the outage."""
    judge = rag.guard.judge
    target = target_of(judge)

    async def check() -> str:
        if target.url is None:
            return f"{target.server} runs in this process"
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                await client.get(target.url)
        except httpx.HTTPError as exc:
            raise ModelUnavailableError(explain_failure(exc, judge)) from None
        return f"{target.server} is reachable"

    return check


def all_ready(*checks: ReadyCheck) -> ReadyCheck:
    """Ready when every check is; the first failure is the reason."""

    async def check() -> str:
        return "; ".join([await one() for one in checks])

    return check
