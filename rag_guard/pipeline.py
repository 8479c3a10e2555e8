"""`GuardedRAG`: question → retrieve → guard → answer / clarify / refuse, as one LangChain Runnable.

The answer and clarify prompts share the guard prompt's prefix (see prompts.py), so on the embedded model
and on caching servers the second call only evaluates a short suffix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import patch_config
from pydantic import ConfigDict

from rag_guard.config import Settings, load_config
from rag_guard.decision import Decision
from rag_guard.errors import GenerationError, GuardFailure
from rag_guard.guard import SufficiencyGuard, clean_question
from rag_guard.model_errors import explain_failure
from rag_guard.prompts import ANSWER_INSTRUCTION, CLARIFY_INSTRUCTION, REFUSAL, build_messages
from rag_guard.results import GuardedAnswer, GuardedAnswerChunk, Source, Timings, Verdict, merge_chunks

log = logging.getLogger(__name__)

QuestionInput = str | dict[str, Any]


def question_of(input: QuestionInput) -> str:
    """Accept a bare string or `{"question": ...}` (the usual LCEL input)."""
    if isinstance(input, dict):
        return clean_question(input.get("question"))
    return clean_question(input)


def sources_of(documents: Sequence[Document]) -> list[Source]:
    return [
        Source(
            label=label,
            source=str(doc.metadata.get("source", "unknown")),
            chunk_index=doc.metadata.get("chunk_index"),
            score=doc.metadata.get("score"),
            text=doc.page_content,
        )
        for label, doc in enumerate(documents, start=1)
    ]


class GuardedRAG(RunnableSerializable[QuestionInput, GuardedAnswer]):
    """Retrieval-augmented answers that are only generated when the guard judges the context sufficient.

    `stream` yields `GuardedAnswerChunk`s: the verdict first, then the answer text as it is generated.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: BaseRetriever
    guard: SufficiencyGuard
    answerer: BaseChatModel
    """Writes answers and clarifying questions; often the same model as `guard.judge`."""
    refusal: str = REFUSAL

    @classmethod
    def from_config(cls, config: Settings | str | Path | None = None) -> GuardedRAG:
        """Build the whole pipeline from config.yaml (or loaded `Settings`); the store must be ingested."""
        from rag_guard.models import build_models
        from rag_guard.retrieval import ChromaRetriever, build_embeddings, embedding_label, open_store

        settings = config if isinstance(config, Settings) else load_config(config)
        models = build_models(settings)
        embeddings = build_embeddings(settings.embeddings)
        store = open_store(settings.chroma, embeddings, embedding_label(settings.embeddings))
        return cls(
            retriever=ChromaRetriever(store=store, k=settings.chroma.k),
            guard=SufficiencyGuard.from_settings(settings, models.judge),
            answerer=models.answerer,
        )

    # --- shared steps ---------------------------------------------------------------------------------

    def _follow_up(self, decision: Decision, question: str, documents: list[Document]) -> list[Any] | None:
        """The prompt for the second call, or None when the pipeline refuses without generating."""
        if decision is Decision.ANSWER:
            return build_messages(question, documents, ANSWER_INSTRUCTION)
        if decision is Decision.CLARIFY:
            return build_messages(question, documents, CLARIFY_INSTRUCTION)
        return None

    def _retrieval_failed(self, exc: Exception, seconds: float) -> Verdict:
        log.error("retrieval failed, refusing: %s", exc)
        if self.guard.fail_mode == "error":
            raise GuardFailure(f"retrieval failed ({type(exc).__name__}: {exc})") from exc
        return Verdict(
            decision=Decision.REFUSE,
            p_sufficient=None,
            reason=f"refused: retrieval failed ({type(exc).__name__}: {exc})",
            timings=Timings(retrieval_s=seconds),
        )

    def _generation_failed(self, verdict: Verdict, exc: Exception) -> GenerationError:
        why = explain_failure(exc, self.answerer)
        log.error("answer model failed after the verdict: %s", why)
        return GenerationError(
            f"The guard's verdict was {verdict.decision.value} ({verdict.reason}), but the answer model failed, "
            f"so nothing was answered: {why}"
        )

    def _header(self, question: str, documents: list[Document], verdict: Verdict) -> GuardedAnswerChunk:
        refusing = verdict.decision is Decision.REFUSE
        return GuardedAnswerChunk(
            question=question,
            decision=verdict.decision,
            p_sufficient=verdict.p_sufficient,
            sources=sources_of(documents),
            verdict=verdict,
            message=self.refusal if refusing else None,
        )

    def _text_chunk(self, decision: Decision, text: str) -> GuardedAnswerChunk:
        if decision is Decision.ANSWER:
            return GuardedAnswerChunk(answer=text)
        return GuardedAnswerChunk(message=text)

    # --- sync -----------------------------------------------------------------------------------------

    def invoke(self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any) -> GuardedAnswer:
        return self._call_with_config(self._invoke, input, config, run_type="chain")

    def _invoke(
        self, input: QuestionInput, run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> GuardedAnswer:
        return merge_chunks(self._chunks(input, run_manager, config, stream=False))

    def stream(
        self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[GuardedAnswerChunk]:
        yield from self._transform_stream_with_config(iter([input]), self._transform_chunks, config)

    def _transform_chunks(
        self, inputs: Iterator[QuestionInput], run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> Iterator[GuardedAnswerChunk]:
        for input in inputs:
            yield from self._chunks(input, run_manager, config, stream=True)

    def _chunks(
        self, input: QuestionInput, run_manager: CallbackManagerForChainRun, config: RunnableConfig, *, stream: bool
    ) -> Iterator[GuardedAnswerChunk]:
        started = time.perf_counter()
        question = question_of(input)

        def child(tag: str) -> RunnableConfig:
            return patch_config(config, callbacks=run_manager.get_child(tag))

        t0 = time.perf_counter()
        try:
            documents = self.retriever.invoke(question, config=child("retrieve"))
        except Exception as exc:
            yield self._header(question, [], self._retrieval_failed(exc, time.perf_counter() - t0))
            return
        retrieval_s = time.perf_counter() - t0
        verdict = self.guard.invoke({"question": question, "documents": documents}, config=child("guard"))
        documents = documents[: verdict.documents_used]
        verdict.timings.retrieval_s = retrieval_s
        prompt = self._follow_up(verdict.decision, question, documents)
        yield self._header(question, documents, verdict)
        t1 = time.perf_counter()
        try:
            if prompt is not None and stream:
                for piece in self.answerer.stream(prompt, config=child("generate")):
                    if piece.text:
                        yield self._text_chunk(verdict.decision, piece.text)
            elif prompt is not None:
                reply = self.answerer.invoke(prompt, config=child("generate"))
                yield self._text_chunk(verdict.decision, reply.text)
        except Exception as exc:
            raise self._generation_failed(verdict, exc) from exc
        _close_timings(verdict.timings, started, t1, generated=prompt is not None)

    # --- async ----------------------------------------------------------------------------------------

    async def ainvoke(self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any) -> GuardedAnswer:
        chunks = [chunk async for chunk in self.astream(input, config, **kwargs)]
        return merge_chunks(chunks)

    async def astream(
        self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[GuardedAnswerChunk]:
        async for chunk in self._atransform_stream_with_config(_aiter_one(input), self._atransform_chunks, config):
            yield chunk

    async def _atransform_chunks(
        self,
        inputs: AsyncIterator[QuestionInput],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> AsyncIterator[GuardedAnswerChunk]:
        async for input in inputs:
            started = time.perf_counter()
            question = question_of(input)

            def child(tag: str) -> RunnableConfig:
                return patch_config(config, callbacks=run_manager.get_child(tag))

            t0 = time.perf_counter()
            try:
                documents = await self.retriever.ainvoke(question, config=child("retrieve"))
            except Exception as exc:
                yield self._header(question, [], self._retrieval_failed(exc, time.perf_counter() - t0))
                continue
            retrieval_s = time.perf_counter() - t0
            verdict = await self.guard.ainvoke({"question": question, "documents": documents}, config=child("guard"))
            documents = documents[: verdict.documents_used]
            verdict.timings.retrieval_s = retrieval_s
            prompt = self._follow_up(verdict.decision, question, documents)
            yield self._header(question, documents, verdict)
            t1 = time.perf_counter()
            try:
                if prompt is not None:
                    async for piece in self.answerer.astream(prompt, config=child("generate")):
                        if piece.text:
                            yield self._text_chunk(verdict.decision, piece.text)
            except Exception as exc:
                raise self._generation_failed(verdict, exc) from exc
            _close_timings(verdict.timings, started, t1, generated=prompt is not None)


def _close_timings(timings: Timings, started: float, generation_started: float, *, generated: bool) -> None:
    now = time.perf_counter()
    if generated:
        timings.generation_s = now - generation_started
    timings.total_s = now - started


async def _aiter_one(item: QuestionInput) -> AsyncIterator[QuestionInput]:
    yield item
