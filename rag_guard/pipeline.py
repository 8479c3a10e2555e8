"""`GuardedRAG`: question → retrieve → guard → answer / clarify / refuse, as one LangChain Runnable.

The answer and clarify prompts continue the prompt the guard judged on (`Verdict.prompt`), so on the
embedded model and on caching servers the second call only evaluates a short suffix. Every path is written
once, as steps (`steps.py`) that `invoke`, `stream`, `ainvoke` and `astream` all run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import patch_config
from pydantic import ConfigDict

from rag_guard.answers import GuardedAnswer, GuardedAnswerChunk, Source, Timings, merge_chunks
from rag_guard.config import Settings, load_config
from rag_guard.errors import GenerationError, GuardFailure
from rag_guard.judging import AnswerCheck, Decision, GuardError, SufficiencyGuard, Verdict, clean_question
from rag_guard.judging.answer_check import check_failed, check_prompt, quoted, read_check, written_check
from rag_guard.judging.answer_text import tidy_answer
from rag_guard.judging.clarify import clarifying_message, unsupported_message
from rag_guard.judging.logprobs import verdict_word
from rag_guard.judging.prompts import (
    EXTRACT_INSTRUCTION,
    REFUSAL,
    SINGLE_PASS_INSTRUCTION,
    VerdictLead,
    refusal_message,
    reply_prompt,
)
from rag_guard.judging.quote import QUOTE_TOKENS, Quote, read_quote
from rag_guard.models.failures import explain_failure
from rag_guard.steps import CloseStream, Invoke, NextPiece, OpenStream, Steps, aiterate, iterate
from rag_guard.store import ensure_ingested

log = logging.getLogger(__name__)

QuestionInput = str | dict[str, Any]
Children = Callable[[str], RunnableConfig]
"""A child run's config by tag (`retrieve`, `guard`, `generate`, `check`), so tracing nests each call."""


def question_of(input: QuestionInput) -> str:
    """Accept a bare string or `{"question": ...}` (the usual LCEL input)."""
    if isinstance(input, dict):
        return clean_question(input.get("question"))
    return clean_question(input)


def sources_of(documents: list[Document]) -> list[Source]:
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

    `stream` yields `GuardedAnswerChunk`s: the verdict first, then the answer text as it is generated, then
    the timings.
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
    grounding: bool = True
    """Hold each answer back until its numbers, names and quoted phrases are found in its passages
    (`judging/grounding.py`); an answer stating one they lack is replaced by what they say closest to the
    question, and one that only restates the question by a clarifying message. The held answer is also
    tidied: no echoed question, no pasted source notes."""
    answer_style: Literal["free", "quote"] = "quote"
    """`quote`: the answer-start call runs on for a few words; when they stand word for word in a passage the
    answer is that span, cited, with the passage's sentence quoted (`judging/quote.py`), else a free answer.
    `free`: the model writes the answer."""
    quote_options: dict[str, Any] | None = None
    """Call options for the quote (a few tokens); None uses OpenAI's names."""
    answer_check: bool = False
    """Hold each answer back until one more token of the judge says it answers the question from the
    passages alone (`judging/answer_check.py`); a failed check replaces it with a clarifying message."""
    answer_check_threshold: float = 0.5
    answer_options: dict[str, Any] | None = None
    """Call options for a free answer (`rag-guard eval` asks for `{"logprobs": True}` to record how sure the
    model was of each token); None: the answerer's own."""

    @classmethod
    def from_config(cls, config: Settings | str | Path | None = None, *, collection: str | None = None) -> GuardedRAG:
        """Build the whole pipeline from config.yaml (or loaded `Settings`), embedded models loaded, answering
        from `collection` (default: `chroma.collection`); an empty collection is a `CorpusError`.

        The embedder and the store open in a thread while the GGUF loads in the caller's: llama.cpp silences
        the process's stdout and stderr while it loads, so the load must not outlast the caller's own work,
        or an error the caller prints meanwhile is lost.
        """
        from rag_guard import factory

        settings = (config if isinstance(config, Settings) else load_config(config)).with_collection(collection)
        models = factory.build_models(settings)
        with ThreadPoolExecutor(1, thread_name_prefix="rag-guard-open-store") as pool:
            opening = pool.submit(factory.open_configured_store, settings)
            factory.load_models(models.judge, models.answerer)
            store = opening.result()
        retriever = factory.build_retriever(settings.chroma, store)
        ensure_ingested(retriever, settings.chroma)
        return cls(
            retriever=retriever,
            guard=factory.build_guard(settings, models.judge),
            answerer=models.answerer,
            max_concurrency=factory.max_concurrency(models, settings),
            **reply_settings(settings),
        )

    # --- the Runnable: four entry points, one path ----------------------------------------------------

    def invoke(self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any) -> GuardedAnswer:
        return merge_chunks(self._chunks(input, config, streaming=False))

    async def ainvoke(self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any) -> GuardedAnswer:
        return merge_chunks([chunk async for chunk in self._achunks(input, config, streaming=False)])

    def stream(
        self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[GuardedAnswerChunk]:
        yield from self._chunks(input, config, streaming=True)

    async def astream(
        self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[GuardedAnswerChunk]:
        async for chunk in self._achunks(input, config, streaming=True):
            yield chunk

    def _chunks(
        self, input: QuestionInput, config: RunnableConfig | None, *, streaming: bool
    ) -> Iterator[GuardedAnswerChunk]:
        """`_steps` run synchronously inside this Runnable's own traced run; `streaming`: the answer is
        generated with the model's `stream` (else `invoke`)."""

        def run(
            inputs: Iterator[QuestionInput], run_manager: CallbackManagerForChainRun, config: RunnableConfig
        ) -> Iterator[GuardedAnswerChunk]:
            for one in inputs:
                yield from iterate(self._steps(one, _children(run_manager, config), streaming=streaming))

        return self._transform_stream_with_config(iter([input]), run, config)

    def _achunks(
        self, input: QuestionInput, config: RunnableConfig | None, *, streaming: bool
    ) -> AsyncIterator[GuardedAnswerChunk]:
        """`_chunks`, with each call awaited."""

        async def run(
            inputs: AsyncIterator[QuestionInput], run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
        ) -> AsyncIterator[GuardedAnswerChunk]:
            async for one in inputs:
                async for chunk in aiterate(self._steps(one, _children(run_manager, config), streaming=streaming)):
                    yield chunk

        return self._atransform_stream_with_config(_aiter_one(input), run, config)

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

    # --- the steps ------------------------------------------------------------------------------------

    def _steps(self, input: QuestionInput, child: Children, *, streaming: bool) -> Steps[None]:
        """One question: retrieve, judge, then the reply the verdict calls for, as chunks; timings last."""
        started = time.perf_counter()
        question = question_of(input)
        timings = Timings()
        try:
            documents = yield Invoke(self.retriever, question, child("retrieve"))
        except Exception as exc:
            timings.retrieval_s = timings.total_s = time.perf_counter() - started
            verdict = self._retrieval_failed(exc)
            yield self._header(question, verdict, verdict.decision).model_copy(update={"timings": timings})
            return
        timings.retrieval_s = time.perf_counter() - started
        if self.single_pass:
            verdict, answer_stream = yield from self._first_token_verdict(question, documents, child("guard"))
        else:
            verdict = yield Invoke(self.guard, {"question": question, "documents": documents}, child("guard"))
            answer_stream = None
        timings.guard_s = verdict.guard_s
        if verdict.decision is Decision.REFUSE:  # nothing to generate: the refusal is one chunk
            timings.total_s = time.perf_counter() - started
            yield self._header(question, verdict, verdict.decision).model_copy(update={"timings": timings})
            return
        generation_started = time.perf_counter()
        try:
            quote = None
            if verdict.decision is Decision.ANSWER and self.answer_style == "quote" and answer_stream is None:
                quote = yield from self._quote(question, verdict, child)
            if quote is not None or (verdict.decision is Decision.ANSWER and (self.grounding or self.answer_check)):
                yield from self._checked(question, verdict, answer_stream, child, quote)
            else:
                yield self._header(question, verdict, verdict.decision)
                yield from self._reply(question, verdict, answer_stream, child, streaming=streaming)
        except Exception as exc:
            raise self._generation_failed(verdict, exc) from exc
        now = time.perf_counter()
        timings.generation_s, timings.total_s = now - generation_started, now - started
        yield GuardedAnswerChunk(timings=timings)

    def _reply(
        self, question: str, verdict: Verdict, answer_stream: Any, child: Children, *, streaming: bool
    ) -> Steps[None]:
        """The answer (streamed when asked) or the clarifying message."""
        if answer_stream is not None:  # single pass: the verdict's own generation goes on
            yield from self._relay(Decision.ANSWER, answer_stream)
            return
        if verdict.decision is Decision.CLARIFY:
            yield (yield from self._clarification(question, verdict, child))
            return
        prompt = reply_prompt(verdict.prompt, Decision.ANSWER) or []
        if streaming:
            yield from self._relay(Decision.ANSWER, (yield OpenStream(self.answerer, prompt, child("generate"))))
        elif text := self._without_lead(
            (yield Invoke(self.answerer, prompt, child("generate"), self._answer_call)).text
        ):
            yield GuardedAnswerChunk(answer=text)

    def _relay(self, decision: Decision, pieces: Any, *, show: bool = True) -> Steps[str]:
        """A model's stream as text chunks (in single-pass mode without the verdict word it opens with);
        returns the whole text. `show=False` holds it back (the answer check)."""
        lead = VerdictLead() if self.single_pass else None
        texts: list[str] = []
        while (piece := (yield NextPiece(pieces))) is not None:
            if text := (lead.feed(piece.text) if lead else piece.text):
                texts.append(text)
                if show:
                    yield self._text_chunk(decision, text)
        if lead and (rest := lead.flush()):
            texts.append(rest)
            if show:
                yield self._text_chunk(decision, rest)
        return "".join(texts)

    def _checked(
        self, question: str, verdict: Verdict, answer_stream: Any, child: Children, quote: Quote | None = None
    ) -> Steps[None]:
        """The answer (the quote, else written whole and tidied) checked, then shown; or, when a check fails, a
        clarifying message (or the refusal) in its place. The first chunk waits for the checks, so it carries
        the final decision. A quote is grounded by construction; the model's check, when on, holds it too."""
        answer_prompt = reply_prompt(verdict.prompt, Decision.ANSWER) or []
        if quote is not None:
            answer, grounded = quote.answer(), quoted(quote)
        else:
            if answer_stream is not None:
                answer = yield from self._relay(Decision.ANSWER, answer_stream, show=False)
            else:
                answer = self._without_lead(
                    (yield Invoke(self.answerer, answer_prompt, child("generate"), self._answer_call)).text
                )
            answer = tidy_answer(answer, question)
            grounded = written_check(answer, question, verdict.documents) if self.grounding else None
        check = yield from self._check(answer, grounded, answer_prompt, child)
        decision = _after_check(check)
        if decision is not Decision.ANSWER:
            check = check.model_copy(update={"draft": answer})
        yield self._header(question, verdict, decision, check)
        if decision is Decision.ANSWER:
            yield GuardedAnswerChunk(answer=answer)
        elif check.unsupported:
            yield GuardedAnswerChunk(message=unsupported_message(question, verdict.documents, check.unsupported))
        elif decision is Decision.CLARIFY:
            yield (yield from self._clarification(question, verdict, child))

    def _check(
        self, answer: str, grounded: AnswerCheck | None, answer_prompt: list[BaseMessage], child: Children
    ) -> Steps[AnswerCheck]:
        """After the grounding check (`grounded`, free: no model call), if it passed and it is on, the model's
        own check, which keeps what the grounding check recorded."""
        if grounded is not None and not (grounded.passed and self.answer_check):
            return grounded
        try:
            reply = yield Invoke(
                self.guard.judge, check_prompt(answer_prompt, answer), child("check"), self.guard.call_options
            )
            check = read_check(reply, self.answer_check_threshold)
        except Exception as exc:
            check = check_failed(exc, self.answer_check_threshold)
        if grounded is None:
            return check
        kept = {
            "checked": grounded.checked,
            "min_token_p": grounded.min_token_p,
            "joint_logprob": grounded.joint_logprob,
            "reason": f"{grounded.reason}; {check.reason}",
        }
        return check.model_copy(update=kept)

    def _quote(self, question: str, verdict: Verdict, child: Children) -> Steps[Quote | None]:
        """The answer-start call run on for a few words, and the passage span they are; None when they are
        no span (or the call failed): the pipeline then writes a free answer."""
        options = self.guard.fork_options(EXTRACT_INSTRUCTION, self.quote_options or {"max_tokens": QUOTE_TOKENS})
        asked = self.guard.messages(question, verdict.documents, EXTRACT_INSTRUCTION)
        try:
            reply = yield Invoke(self.guard.judge, asked, child("quote"), options)
        except Exception as exc:
            log.warning("the quote could not be asked, writing a free answer: %s", exc)
            return None
        return read_quote(reply, verdict.documents, question)

    def _first_token_verdict(
        self, question: str, documents: list[Document], config: RunnableConfig
    ) -> Steps[tuple[Verdict, Any]]:
        """Single pass: the verdict from the generation's first token, and the rest of it when it answers.

        The generation is closed (stopped) unless the gate passes with "True" as the token actually
        generated; a clarifying question, or an answer after any other first token, takes a second call.
        """
        prompt = self.guard.prepare(question, documents, SINGLE_PASS_INSTRUCTION)
        started = time.perf_counter()
        try:
            pieces = yield OpenStream(self.answerer, prompt.messages, config, self._single_pass_call)
            first = yield from _first_scored(pieces)
        except Exception as exc:  # the stream ended with the error: nothing to close
            return self.guard.failed(exc, prompt, time.perf_counter() - started), None
        verdict = self.guard.finish(first, prompt, time.perf_counter() - started)
        if verdict.decision is Decision.ANSWER and verdict_word(first.text) is True:
            return verdict, pieces
        yield CloseStream(pieces)
        return verdict, None

    @property
    def _answer_call(self) -> dict[str, Any]:
        return self.answer_options or {}

    @property
    def _single_pass_call(self) -> dict[str, Any]:
        return self.single_pass_options or {"logprobs": True, "top_logprobs": self.guard.top_logprobs}

    # --- what the user gets ---------------------------------------------------------------------------

    def _header(
        self, question: str, verdict: Verdict, decision: Decision, check: AnswerCheck | None = None
    ) -> GuardedAnswerChunk:
        """The first chunk: the verdict, and the decision the user gets (the gate's, unless the answer check
        withheld its answer)."""
        return GuardedAnswerChunk(
            question=question,
            decision=decision,
            p_sufficient=verdict.p_sufficient,
            sources=sources_of(verdict.documents),
            verdict=verdict,
            message=refusal_message(verdict.error, self.refusal) if decision is Decision.REFUSE else None,
            reason=verdict.reason
            if check is None or check.passed
            else (f"{verdict.reason}; the answer was withheld: the answer check gave {check.reason}"),
            answer_check=check,
        )

    def _clarification(self, question: str, verdict: Verdict, child: Children) -> Steps[GuardedAnswerChunk]:
        """The clarifying message built around the unanswered part (`clarify.py`): the judged part that scored
        lowest, else the model's copy of it. It comes whole, also when streaming, since it is assembled."""
        if (part := verdict.uncovered_part) is None:
            reply = yield Invoke(self.answerer, reply_prompt(verdict.prompt, Decision.CLARIFY), child("generate"))
            part = self._without_lead(reply.text)
        return GuardedAnswerChunk(message=clarifying_message(question, verdict.documents, part))

    def _without_lead(self, text: str) -> str:
        """In single-pass mode a reply tends to repeat its verdict word first: drop it."""
        if not self.single_pass:
            return text
        lead = VerdictLead()
        return lead.feed(text) + lead.flush()

    @staticmethod
    def _text_chunk(decision: Decision, text: str) -> GuardedAnswerChunk:
        if decision is Decision.ANSWER:
            return GuardedAnswerChunk(answer=text)
        return GuardedAnswerChunk(message=text)

    def _retrieval_failed(self, exc: Exception) -> Verdict:
        log.error("retrieval failed, refusing: %s", exc)
        if self.guard.fail_mode == "error":
            raise GuardFailure(f"retrieval failed ({type(exc).__name__}: {exc})") from exc
        why = f"retrieval failed ({type(exc).__name__}: {exc}): check the store (`rag-guard doctor`)"
        return Verdict(
            decision=Decision.REFUSE,
            p_sufficient=None,
            reason=f"refused: {why}",
            error=GuardError(kind="retrieval_failed", message=why),
        )

    def _generation_failed(self, verdict: Verdict, exc: Exception) -> GenerationError:
        why = explain_failure(exc, self.answerer)
        log.error("answer model failed after the verdict: %s", why)
        return GenerationError(
            f"The guard's verdict was {verdict.decision.value} ({verdict.reason}), but the answer model failed, "
            f"so nothing was answered: {why}"
        )


def reply_settings(settings: Settings) -> dict[str, Any]:
    """The pipeline's fields that config.yaml sets, besides its models and store: how replies are made."""
    from rag_guard import factory

    return {
        "single_pass": settings.guard.mode == "single_pass",
        "single_pass_options": factory.guard_call_options(
            settings.model, settings.guard.top_logprobs, tokens=settings.model.max_tokens + 1
        ),
        "grounding": settings.guard.grounding,
        "answer_style": settings.guard.answer_style,
        "quote_options": factory.quote_options(settings),
        "answer_check": settings.guard.answer_check == "buffer",
        "answer_check_threshold": settings.guard.answer_check_threshold,
    }


def _children(
    run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun, config: RunnableConfig
) -> Children:
    def child(tag: str) -> RunnableConfig:
        return patch_config(config, callbacks=run_manager.get_child(tag))

    return child


def _after_check(check: AnswerCheck) -> Decision:
    """The decision the user gets after the answer check."""
    if check.passed:
        return Decision.ANSWER
    log.info("answer check failed, withholding the answer: %s", check.reason)
    return Decision.REFUSE if check.untrusted else Decision.CLARIFY


def _first_scored(pieces: Any) -> Steps[BaseMessageChunk]:
    """The first chunk with text or logprobs (OpenAI-style streams open with an empty role chunk)."""
    while (piece := (yield NextPiece(pieces))) is not None:
        if piece.text or piece.response_metadata.get("logprobs"):
            return piece
    return AIMessageChunk(content="")  # an empty stream: the guard reads "no logprobs" and refuses


async def _aiter_one(item: QuestionInput) -> AsyncIterator[QuestionInput]:
    yield item
