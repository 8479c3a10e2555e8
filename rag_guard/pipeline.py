"""`GuardedRAG`: question → retrieve → guard → answer / clarify / refuse, as one LangChain Runnable.

The answer and clarify prompts share the guard prompt's prefix (see prompts.py), so on the embedded model
and on caching servers the second call only evaluates a short suffix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import patch_config
from pydantic import ConfigDict

from rag_guard.answer_check import AnswerCheck, check_failed, check_prompt, read_check
from rag_guard.clarify import clarifying_message
from rag_guard.config import Settings, load_config
from rag_guard.decision import Decision
from rag_guard.errors import GenerationError, GuardFailure
from rag_guard.guard import SufficiencyGuard, clean_question
from rag_guard.logprobs import verdict_word
from rag_guard.model_errors import explain_failure
from rag_guard.prompts import REFUSAL, SINGLE_PASS_INSTRUCTION, VerdictLead, reply_prompt
from rag_guard.results import GuardedAnswer, GuardedAnswerChunk, Source, Timings, Verdict, merge_chunks

if TYPE_CHECKING:
    from langchain_chroma import Chroma

log = logging.getLogger(__name__)

QuestionInput = str | dict[str, Any]
T = TypeVar("T")


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
    single_pass: bool = False
    """Read the verdict off the first token of the answer's own generation, which goes on only if the gate
    passes; the judge must then be the answerer, and the guard's other signals are not asked (the verdict
    alone gates). False: the guard's one-token questions, then a second call."""
    single_pass_options: dict[str, Any] | None = None
    """Call options for the single-pass generation (logprobs on its first token); None uses OpenAI's names."""
    max_concurrency: int | None = None
    """Questions in flight at once in `batch` / `abatch` when the call's config does not say."""
    answer_check: bool = False
    """Hold each answer back until one more token of the judge says it answers the question from the
    passages alone (`answer_check.py`); a failed check replaces it with a clarifying message."""
    answer_check_threshold: float = 0.5

    @classmethod
    def from_config(cls, config: Settings | str | Path | None = None) -> GuardedRAG:
        """Build the whole pipeline from config.yaml (or loaded `Settings`), embedded models loaded; the store
        must be ingested.

        The embedder and the store open in a thread while the GGUF loads in the caller's: llama.cpp silences
        the process's stdout and stderr while it loads, so the load must not outlast the caller's own work,
        or an error the caller prints meanwhile is lost.
        """
        from rag_guard.models import build_models, guard_call_options, load_models
        from rag_guard.retrieval import ChromaRetriever

        settings = config if isinstance(config, Settings) else load_config(config)
        models = build_models(settings)
        with ThreadPoolExecutor(1, thread_name_prefix="rag-guard-open-store") as pool:
            opening = pool.submit(_open_store, settings)
            load_models(models.judge, models.answerer)
            store = opening.result()
        embedded = "llamacpp" in (settings.model.provider, models.judge_settings.provider)
        return cls(
            retriever=ChromaRetriever(store=store, k=settings.chroma.k),
            guard=SufficiencyGuard.from_settings(settings, models.judge),
            answerer=models.answerer,
            single_pass=settings.guard.mode == "single_pass",
            single_pass_options=guard_call_options(
                settings.model, settings.guard.top_logprobs, tokens=settings.model.max_tokens + 1
            ),
            # An embedded model runs one call at a time; interleaving questions would only evict each
            # question's cached prefix between its verdict and its answer.
            max_concurrency=1 if embedded else settings.model.concurrency,
            answer_check=settings.guard.answer_check == "buffer",
            answer_check_threshold=settings.guard.answer_check_threshold,
        )

    # --- batching -------------------------------------------------------------------------------------

    def batch(
        self,
        inputs: list[QuestionInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[GuardedAnswer]:
        return super().batch(inputs, self._bounded(config), return_exceptions=return_exceptions, **kwargs)

    async def abatch(
        self,
        inputs: list[QuestionInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[GuardedAnswer]:
        return await super().abatch(inputs, self._bounded(config), return_exceptions=return_exceptions, **kwargs)

    def _bounded(self, config: RunnableConfig | list[RunnableConfig] | None) -> Any:
        """The call's config with `max_concurrency` defaulted to the pipeline's own bound."""
        if self.max_concurrency is None:
            return config
        if isinstance(config, list):
            return [self._bounded(c) for c in config]
        bounded = dict(config or {})
        bounded.setdefault("max_concurrency", self.max_concurrency)
        return RunnableConfig(**bounded)  # type: ignore[typeddict-item]

    # --- shared steps ---------------------------------------------------------------------------------

    def _follow_up(
        self, decision: Decision, question: str, documents: list[Document], *, single_pass: bool | None = None
    ) -> list[Any] | None:
        """The prompt for the second call, or None when the pipeline refuses without generating.

        It continues the judge's prompt (rebuilt here exactly as the judge saw it), so the KV cache of the
        verdict serves it whole.
        """
        single_pass = self.single_pass if single_pass is None else single_pass
        instruction = SINGLE_PASS_INSTRUCTION if single_pass else self.guard.instruction
        return reply_prompt(self.guard.messages(question, documents, instruction), decision)

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

    def _header(
        self, question: str, documents: list[Document], verdict: Verdict, decision: Decision | None = None
    ) -> GuardedAnswerChunk:
        """The first chunk: the verdict, and the decision the user gets (the gate's, unless the answer check
        withheld its answer)."""
        decision = decision or verdict.decision
        refusing = decision is Decision.REFUSE
        return GuardedAnswerChunk(
            question=question,
            decision=decision,
            p_sufficient=verdict.p_sufficient,
            sources=sources_of(documents),
            verdict=verdict,
            message=self.refusal if refusing else None,
        )

    def _checking(self, verdict: Verdict) -> bool:
        return self.answer_check and verdict.decision is Decision.ANSWER

    def _check_prompt(self, question: str, documents: list[Document], answer: str) -> list[BaseMessage]:
        """The answer's own prompt and the answer, then the check's question: in two-call mode the answer's
        cache serves it (single-pass answers were written after another prompt, which is re-evaluated)."""
        answer_prompt = self._follow_up(Decision.ANSWER, question, documents, single_pass=False)
        return check_prompt(answer_prompt or [], answer)

    def _after_check(self, verdict: Verdict, check: AnswerCheck) -> Decision:
        """Record the check on the verdict; the decision the user gets."""
        verdict.answer_check = check
        if check.passed:
            return Decision.ANSWER
        log.info("answer check failed, withholding the answer: %s", check.reason)
        verdict.reason += f"; the answer was withheld: the answer check gave {check.reason}"
        return Decision.CLARIFY if check.p_supported is not None else Decision.REFUSE

    def _clarification(self, question: str, documents: list[Document], reply: BaseMessage) -> GuardedAnswerChunk:
        """The clarifying message built around the model's copy of the unanswered part (`clarify.py`); it
        comes whole, also when streaming, since it is assembled from its parts."""
        text = reply.text
        if self.single_pass:  # a reply after the single-pass prompt tends to repeat its verdict first
            lead = VerdictLead()
            text = lead.feed(text) + lead.flush()
        return GuardedAnswerChunk(message=clarifying_message(question, documents, text))

    def _text_chunk(self, decision: Decision, text: str) -> GuardedAnswerChunk:
        if decision is Decision.ANSWER:
            return GuardedAnswerChunk(answer=text)
        return GuardedAnswerChunk(message=text)

    def _texts(self, decision: Decision, pieces: Iterable[BaseMessage]) -> Iterator[GuardedAnswerChunk]:
        """The generated text as chunks; in single-pass mode without the verdict word it begins with."""
        lead = VerdictLead() if self.single_pass else None
        for piece in pieces:
            if text := (lead.feed(piece.text) if lead else piece.text):
                yield self._text_chunk(decision, text)
        if lead and (rest := lead.flush()):
            yield self._text_chunk(decision, rest)

    async def _atexts(
        self, decision: Decision, pieces: AsyncIterator[BaseMessage]
    ) -> AsyncIterator[GuardedAnswerChunk]:
        lead = VerdictLead() if self.single_pass else None
        async for piece in pieces:
            if text := (lead.feed(piece.text) if lead else piece.text):
                yield self._text_chunk(decision, text)
        if lead and (rest := lead.flush()):
            yield self._text_chunk(decision, rest)

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
        if self.single_pass:
            verdict, answer_stream = self._first_token_verdict(question, documents, child("guard"))
        else:
            verdict = self.guard.invoke({"question": question, "documents": documents}, config=child("guard"))
            answer_stream = None
        documents = documents[: verdict.documents_used]
        verdict.timings.retrieval_s = retrieval_s
        prompt = None if answer_stream else self._follow_up(verdict.decision, question, documents)
        t1 = time.perf_counter()
        if self._checking(verdict):
            yield from self._checked(question, documents, verdict, prompt, answer_stream, child)
            _close_timings(verdict.timings, started, t1, generated=True)
            return
        yield self._header(question, documents, verdict)
        try:
            if answer_stream is not None:
                yield from self._texts(verdict.decision, answer_stream)
            elif prompt is not None and verdict.decision is Decision.CLARIFY:
                yield self._clarification(question, documents, self.answerer.invoke(prompt, config=child("generate")))
            elif prompt is not None and stream:
                yield from self._texts(verdict.decision, self.answerer.stream(prompt, config=child("generate")))
            elif prompt is not None:
                yield from self._texts(verdict.decision, [self.answerer.invoke(prompt, config=child("generate"))])
        except Exception as exc:
            raise self._generation_failed(verdict, exc) from exc
        _close_timings(verdict.timings, started, t1, generated=bool(answer_stream or prompt))

    def _checked(
        self,
        question: str,
        documents: list[Document],
        verdict: Verdict,
        prompt: list[Any] | None,
        answer_stream: Iterator[BaseMessageChunk] | None,
        child: Callable[[str], RunnableConfig],
    ) -> Iterator[GuardedAnswerChunk]:
        """The answer written whole, checked, then shown; or, when the check fails, a clarifying message (or
        the refusal) in its place. The first chunk waits for the check, so it carries the final decision."""
        try:
            pieces = (
                answer_stream if answer_stream is not None else [self.answerer.invoke(prompt, config=child("generate"))]
            )
            answer = "".join(chunk.answer or "" for chunk in self._texts(Decision.ANSWER, pieces))
        except Exception as exc:
            raise self._generation_failed(verdict, exc) from exc
        try:
            reply = self.guard.judge.invoke(
                self._check_prompt(question, documents, answer), config=child("check"), **self.guard.call_options
            )
            check = read_check(reply, self.answer_check_threshold)
        except Exception as exc:
            check = check_failed(exc, self.answer_check_threshold)
        decision = self._after_check(verdict, check)
        yield self._header(question, documents, verdict, decision)
        if decision is Decision.ANSWER:
            yield self._text_chunk(decision, answer)
        elif decision is Decision.CLARIFY:
            clarify = self._follow_up(Decision.CLARIFY, question, documents, single_pass=False)
            try:
                yield self._clarification(question, documents, self.answerer.invoke(clarify, config=child("generate")))
            except Exception as exc:
                raise self._generation_failed(verdict, exc) from exc

    def _first_token_verdict(
        self, question: str, documents: list[Document], config: RunnableConfig
    ) -> tuple[Verdict, Iterator[BaseMessageChunk] | None]:
        """Single pass: the verdict from the generation's first token, and the rest of it when it answers.

        The generation is closed (stopped) unless the gate passes with "True" as the token actually
        generated; a clarifying question, or an answer after any other first token, takes a second call.
        """
        prompt = self.guard.prepare(question, documents, SINGLE_PASS_INSTRUCTION)
        started = time.perf_counter()
        pieces = self.answerer.stream(prompt.messages, config=config, **self._single_pass_call)
        answering = False
        try:
            try:
                first = _first_scored(pieces)
            except Exception as exc:
                return self.guard.failed(exc, prompt, time.perf_counter() - started), None
            verdict = self.guard.finish(first, prompt, time.perf_counter() - started)
            answering = _gate_passed_on_true(verdict, first)
            return verdict, pieces if answering else None
        finally:
            if not answering:
                pieces.close()

    @property
    def _single_pass_call(self) -> dict[str, Any]:
        return self.single_pass_options or {"logprobs": True, "top_logprobs": self.guard.top_logprobs}

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
            if self.single_pass:
                verdict, answer_stream = await self._afirst_token_verdict(question, documents, child("guard"))
            else:
                verdict = await self.guard.ainvoke(
                    {"question": question, "documents": documents}, config=child("guard")
                )
                answer_stream = None
            documents = documents[: verdict.documents_used]
            verdict.timings.retrieval_s = retrieval_s
            prompt = None if answer_stream else self._follow_up(verdict.decision, question, documents)
            t1 = time.perf_counter()
            if self._checking(verdict):
                async for chunk in self._achecked(question, documents, verdict, prompt, answer_stream, child):
                    yield chunk
                _close_timings(verdict.timings, started, t1, generated=True)
                continue
            yield self._header(question, documents, verdict)
            try:
                if answer_stream is None and prompt is not None and verdict.decision is Decision.CLARIFY:
                    reply = await self.answerer.ainvoke(prompt, config=child("generate"))
                    yield self._clarification(question, documents, reply)
                elif answer_stream is None and prompt is not None:
                    answer_stream = self.answerer.astream(prompt, config=child("generate"))
                if answer_stream is not None:
                    async for chunk in self._atexts(verdict.decision, answer_stream):
                        yield chunk
            except Exception as exc:
                raise self._generation_failed(verdict, exc) from exc
            _close_timings(verdict.timings, started, t1, generated=answer_stream is not None)

    async def _achecked(
        self,
        question: str,
        documents: list[Document],
        verdict: Verdict,
        prompt: list[Any] | None,
        answer_stream: AsyncIterator[BaseMessageChunk] | None,
        child: Callable[[str], RunnableConfig],
    ) -> AsyncIterator[GuardedAnswerChunk]:
        """`_checked`, async."""
        try:
            if answer_stream is None:
                answer_stream = _aiter_one(await self.answerer.ainvoke(prompt, config=child("generate")))
            answer = "".join([chunk.answer or "" async for chunk in self._atexts(Decision.ANSWER, answer_stream)])
        except Exception as exc:
            raise self._generation_failed(verdict, exc) from exc
        try:
            reply = await self.guard.judge.ainvoke(
                self._check_prompt(question, documents, answer), config=child("check"), **self.guard.call_options
            )
            check = read_check(reply, self.answer_check_threshold)
        except Exception as exc:
            check = check_failed(exc, self.answer_check_threshold)
        decision = self._after_check(verdict, check)
        yield self._header(question, documents, verdict, decision)
        if decision is Decision.ANSWER:
            yield self._text_chunk(decision, answer)
        elif decision is Decision.CLARIFY:
            clarify = self._follow_up(Decision.CLARIFY, question, documents, single_pass=False)
            try:
                reply = await self.answerer.ainvoke(clarify, config=child("generate"))
            except Exception as exc:
                raise self._generation_failed(verdict, exc) from exc
            yield self._clarification(question, documents, reply)

    async def _afirst_token_verdict(
        self, question: str, documents: list[Document], config: RunnableConfig
    ) -> tuple[Verdict, AsyncIterator[BaseMessageChunk] | None]:
        """`_first_token_verdict`, async."""
        prompt = self.guard.prepare(question, documents, SINGLE_PASS_INSTRUCTION)
        started = time.perf_counter()
        pieces = self.answerer.astream(prompt.messages, config=config, **self._single_pass_call)
        answering = False
        try:
            try:
                first = await _afirst_scored(pieces)
            except Exception as exc:
                return self.guard.failed(exc, prompt, time.perf_counter() - started), None
            verdict = self.guard.finish(first, prompt, time.perf_counter() - started)
            answering = _gate_passed_on_true(verdict, first)
            return verdict, pieces if answering else None
        finally:
            if not answering:
                await pieces.aclose()


def _open_store(settings: Settings) -> Chroma:
    """The embedder and the Chroma store config.yaml names."""
    from rag_guard.retrieval import build_embeddings, embedding_label, open_store

    embeddings = build_embeddings(settings.embeddings, settings.cache_dir)
    return open_store(settings.chroma, embeddings, embedding_label(settings.embeddings))


def _gate_passed_on_true(verdict: Verdict, first: BaseMessageChunk) -> bool:
    return verdict.decision is Decision.ANSWER and verdict_word(first.text) is True


def _first_scored(pieces: Iterator[BaseMessageChunk]) -> BaseMessageChunk:
    """The first chunk with text or logprobs (OpenAI-style streams open with an empty role chunk)."""
    for piece in pieces:
        if piece.text or piece.response_metadata.get("logprobs"):
            return piece
    return AIMessageChunk(content="")  # an empty stream: the guard reads "no logprobs" and refuses


async def _afirst_scored(pieces: AsyncIterator[BaseMessageChunk]) -> BaseMessageChunk:
    async for piece in pieces:
        if piece.text or piece.response_metadata.get("logprobs"):
            return piece
    return AIMessageChunk(content="")


def _close_timings(timings: Timings, started: float, generation_started: float, *, generated: bool) -> None:
    now = time.perf_counter()
    if generated:
        timings.generation_s = now - generation_started
    timings.total_s = now - started


async def _aiter_one(item: T) -> AsyncIterator[T]:
    yield item
