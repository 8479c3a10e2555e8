"""`GuardedRAG`: question → retrieve → guard → answer / clarify / refuse, as one LangChain Runnable.

The pipeline retrieves and gets the verdict; what the user then reads is the reply policy's
(`reply/policy.py`), which the agent middleware drives too. The answer and clarify prompts continue the
prompt the guard judged on (`Verdict.prompt`), so on the embedded model and on caching servers the second
call only evaluates a short suffix. Every path is written once, as steps (`steps.py`) that `invoke`,
`stream`, `ainvoke` and `astream` all run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import patch_config
from pydantic import ConfigDict, Field

from rag_guard.conversation.rewrite import (
    REWRITE_TOKENS,
    Rewrite,
    ambiguity,
    narrowed,
    needs_rewrite,
    read_rewrite,
    rewrite_prompt,
    same_question,
)
from rag_guard.conversation.turns import Turn
from rag_guard.errors import GenerationError, GuardFailure, InvalidQuestionError
from rag_guard.judging import Decision, ErrorInfo, SufficiencyGuard, Verdict, clean_question
from rag_guard.judging.logprobs import verdict_word
from rag_guard.judging.prompts import SINGLE_PASS_INSTRUCTION
from rag_guard.models.failures import explain_failure
from rag_guard.reply.answers import GuardedAnswer, GuardedAnswerChunk, Timings, merge_chunks
from rag_guard.reply.policy import Children, ReplyPolicy, ReplySettings
from rag_guard.steps import CloseStream, Invoke, NextPiece, OpenStream, Steps, aiterate, iterate

if TYPE_CHECKING:
    from rag_guard.config import Settings

log = logging.getLogger(__name__)

QuestionInput = str | dict[str, Any]


def question_of(input: QuestionInput) -> str:
    """Accept a bare string or `{"question": ...}` (the usual LCEL input)."""
    if isinstance(input, dict):
        return clean_question(input.get("question"))
    return clean_question(input)


def history_of(input: QuestionInput) -> list[Turn]:
    """`{"question": ..., "history": [...]}`'s earlier turns: `Turn`s, `{"role", "content"}` dicts, (role,
    content) pairs or LangChain messages; none for a bare question."""
    if not isinstance(input, dict):
        return []
    turns = []
    for item in input.get("history") or []:
        if isinstance(item, Turn):
            turns.append(item)
        elif isinstance(item, BaseMessage):
            role = {"human": "user", "ai": "assistant"}.get(item.type, item.type)
            turns.append(Turn(role, item.text))
        elif isinstance(item, dict):
            turns.append(Turn(str(item.get("role", "")), str(item.get("content", ""))))
        else:
            role, content = item
            turns.append(Turn(str(role), str(content)))
    return [turn for turn in turns if turn.role in ("user", "assistant") and turn.content.strip()]


class GuardedRAG(RunnableSerializable[QuestionInput, GuardedAnswer]):
    """Retrieval-augmented answers that are only generated when the guard judges the context sufficient.

    `stream` yields `GuardedAnswerChunk`s: the verdict first, then the answer text as it is generated, then
    the timings.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: BaseRetriever
    guard: SufficiencyGuard
    answerer: BaseChatModel
    """Writes answers and names the part a clarifying message asks about; often the same model as `guard.judge`."""
    reply: ReplySettings = Field(default_factory=ReplySettings)
    """How a verdict becomes what the user reads: quote or written answers, the checks, the refusal."""
    single_pass: bool = False
    """Read the verdict off the first token of the answer's own generation, which goes on only if the gate
    passes; the judge must then be the answerer, and the guard's other signals are not asked (the verdict
    alone gates). False: the guard's one-token questions, then a second call."""
    single_pass_options: dict[str, Any] | None = None
    """Call options for the single-pass generation (logprobs on its first token); None uses OpenAI's names."""
    rewrite_options: dict[str, Any] | None = None
    """Call options for a follow-up's rewrite (a few dozen tokens); None uses OpenAI's names."""
    max_concurrency: int | None = None
    """Questions in flight at once in `batch` / `abatch` when the call's config does not say."""

    @classmethod
    def from_config(
        cls,
        config: Settings | str | Path | None = None,
        *,
        collection: str | None = None,
        retriever: BaseRetriever | None = None,
        guard_fields: Mapping[str, Any] | None = None,
        reply_fields: Mapping[str, Any] | None = None,
    ) -> GuardedRAG:
        """The whole pipeline as config.yaml (or loaded `Settings`) describes it, embedded models loaded,
        answering from `collection` (default: `chroma.collection`; an empty one is a `CorpusError`), or from
        `retriever`; `guard_fields` and `reply_fields` replace the guard's and the reply settings' fields
        (`factory.build_pipeline`)."""
        from rag_guard import factory

        return factory.build_pipeline(
            cls,
            config,
            collection=collection,
            retriever=retriever,
            guard_fields=guard_fields,
            reply_fields=reply_fields,
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
        typed = question_of(input)
        timings = Timings()
        policy = ReplyPolicy(self.reply, self.guard, self.answerer, child, self.single_pass)
        chained = isinstance(input, dict) and bool(input.get("chained"))
        rewrite = yield from self._standalone(typed, history_of(input), child, chained=chained)
        timings.rewrite_s = time.perf_counter() - started if rewrite.rewritten or rewrite.ambiguous else 0.0
        if rewrite.ambiguous:
            timings.total_s = timings.rewrite_s
            yield _asking_which(typed, rewrite).model_copy(update={"timings": timings})
            return
        question = rewrite.question
        asked = None if same_question(question, typed) else typed
        retrieval_started = time.perf_counter()
        try:
            documents = yield Invoke(self.retriever, question, child("retrieve"))
        except Exception as exc:
            timings.retrieval_s = time.perf_counter() - retrieval_started
            timings.total_s = time.perf_counter() - started
            verdict = self._retrieval_failed(exc)
            header = policy.header(question, verdict, verdict.decision)
            yield header.model_copy(update={"timings": timings, "asked": asked})
            return
        timings.retrieval_s = time.perf_counter() - retrieval_started
        if asked is not None:
            yield GuardedAnswerChunk(asked=asked)
        if self.single_pass:
            verdict, answer_stream = yield from self._first_token_verdict(question, documents, child("guard"))
        else:
            verdict = yield Invoke(self.guard, {"question": question, "documents": documents}, child("guard"))
            answer_stream = None
        timings.guard_s = verdict.guard_s
        if verdict.decision is Decision.REFUSE:  # nothing to generate: the refusal is one chunk
            timings.total_s = time.perf_counter() - started
            yield policy.header(question, verdict, verdict.decision).model_copy(update={"timings": timings})
            return
        generation_started = time.perf_counter()
        try:
            yield from policy.reply(question, verdict, streaming=streaming, answer_stream=answer_stream)
        except Exception as exc:
            raise self._generation_failed(verdict, exc) from exc
        now = time.perf_counter()
        timings.generation_s, timings.total_s = now - generation_started, now - started
        yield GuardedAnswerChunk(timings=timings)

    def _standalone(self, typed: str, history: list[Turn], child: Children, *, chained: bool) -> Steps[Rewrite]:
        """The question to judge: as typed for a first turn or a follow-up that stands alone; the question
        back for an ambiguous one; else the writer's rewrite (of the chain, for replies to clarifying
        questions), or the question as typed when the call fails."""
        if not needs_rewrite(typed, history, chained=chained):
            return Rewrite(question=typed)
        if options := ambiguity(typed, history):
            return Rewrite(question=typed, options=options)
        if chained and (parts := narrowed(typed)):
            return Rewrite(question=parts)
        try:
            options = self.rewrite_options or {"max_tokens": REWRITE_TOKENS}
            reply = yield Invoke(self.answerer, rewrite_prompt(typed, history), child("rewrite"), options)
        except Exception as exc:
            log.warning("the follow-up could not be rewritten, judging it as typed: %s", exc)
            return Rewrite(question=typed, rewritten=True)
        rewrite = read_rewrite(reply.text, typed)
        try:
            return Rewrite(question=clean_question(rewrite.question), rewritten=True)
        except InvalidQuestionError:
            return Rewrite(question=typed, rewritten=True)

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
    def _single_pass_call(self) -> dict[str, Any]:
        return self.single_pass_options or {"logprobs": True, "top_logprobs": self.guard.top_logprobs}

    def _retrieval_failed(self, exc: Exception) -> Verdict:
        log.error("retrieval failed, refusing: %s", exc)
        if self.guard.fail_mode == "error":
            raise GuardFailure(f"retrieval failed ({type(exc).__name__}: {exc})") from exc
        why = f"retrieval failed ({type(exc).__name__}: {exc}): check the store (`rag-guard doctor`)"
        return Verdict(
            decision=Decision.REFUSE,
            p_sufficient=None,
            reason=f"refused: {why}",
            error=ErrorInfo(kind="retrieval_failed", message=why),
        )

    def _generation_failed(self, verdict: Verdict, exc: Exception) -> GenerationError:
        why = explain_failure(exc, self.answerer)
        log.error("answer model failed after the verdict: %s", why)
        return GenerationError(
            f"The guard's verdict was {verdict.decision.value} ({verdict.reason}), but the answer model failed, "
            f"so nothing was answered: {why}"
        )


def _asking_which(typed: str, rewrite: Rewrite) -> GuardedAnswerChunk:
    """The reply to an ambiguous follow-up: a question back, before anything is retrieved or judged."""
    reason = f"the question could mean {', '.join(rewrite.options)}: asked which, before judging"
    verdict = Verdict(decision=Decision.CLARIFY, p_sufficient=None, reason=reason)
    return GuardedAnswerChunk(
        question=typed,
        decision=Decision.CLARIFY,
        verdict=verdict,
        sources=[],
        message=rewrite.which(),
        reason=reason,
    )


def _children(
    run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun, config: RunnableConfig
) -> Children:
    def child(tag: str) -> RunnableConfig:
        return patch_config(config, callbacks=run_manager.get_child(tag))

    return child


def _first_scored(pieces: Any) -> Steps[BaseMessageChunk]:
    """The first chunk with text or logprobs (OpenAI-style streams open with an empty role chunk)."""
    while (piece := (yield NextPiece(pieces))) is not None:
        if piece.text or piece.response_metadata.get("logprobs"):
            return piece
    return AIMessageChunk(content="")  # an empty stream: the guard reads "no logprobs" and refuses


async def _aiter_one(item: QuestionInput) -> AsyncIterator[QuestionInput]:
    yield item
