"""The reply policy: from a verdict to what the user reads, written once for the pipeline and the agent.

After the gate, every caller does the same things: refuse (or say what failed); answer with a span quoted from
a passage, or else with a written answer that is tidied and checked (the restatement and grounding checks, then
the model's own check when it is on); or clarify with a message assembled around the part the passages leave
open. `GuardedRAG` writes its answer here; `GuardMiddleware` hands over the answer its agent already wrote.
The steps are `steps.py`'s, so sync, async and streaming share this one path; they yield `GuardedAnswerChunk`s,
the header (the decision the user gets, the verdict, the sources) before any text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field

from rag_guard.judging import Decision, SufficiencyGuard, Verdict
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from rag_guard.reply.answer_text import VerdictLead, tidy_answer
from rag_guard.reply.answers import GuardedAnswerChunk, sources_of
from rag_guard.reply.checks import (
    AnswerCheck,
    about_subject,
    check_failed,
    check_prompt,
    quoted,
    read_check,
    written_check,
)
from rag_guard.reply.clarify import UNTOUCHED, clarifying_message, touches, unsupported_message
from rag_guard.reply.prompts import REFUSAL, refusal_message, reply_prompt
from rag_guard.reply.quote import QUOTE_TOKENS, Quote, read_quote
from rag_guard.reply.subject import off_subject_message
from rag_guard.steps import Invoke, NextPiece, OpenStream, Steps

log = logging.getLogger(__name__)

Children = Callable[[str], RunnableConfig | None]
"""A child run's config by tag (`generate`, `quote`, `check`), so tracing nests each call under its caller."""


def untraced(tag: str) -> None:
    """No child runs: the calls are traced, if at all, by whatever callbacks the models carry."""
    return None


class ReplySettings(BaseModel):
    """How a verdict becomes a reply; `config.yaml`'s `guard` section sets them (`factory.reply_settings`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    refusal: str = REFUSAL
    """What a refused question gets when the guard could judge it (an outage says what failed instead)."""
    grounding: bool = True
    """Hold a written answer until it says more than the question and its passages state its numbers, names
    and quoted phrases (`grounding.py`); else show what they say closest to the question. The held answer is
    also tidied: no echoed question, no pasted source notes."""
    answer_style: Literal["free", "quote"] = "quote"
    """`quote`: the answer-start call runs on for a few words; when they stand word for word in a passage the
    answer is that span, cited, with the passage's sentence quoted (`quote.py`); else a written answer.
    `free`: always the written answer."""
    quote_options: dict[str, Any] | None = None
    """Call options for the quote's few tokens; None uses OpenAI's names."""
    verify_answer: bool = False
    """Hold each answer until one more token of the judge says it answers the question from the passages alone
    (`checks.py`); a failed check replaces it with a clarifying message."""
    verify_threshold: float = Field(0.5, ge=0, le=1)
    answer_options: dict[str, Any] | None = None
    """Call options for a written answer (`rag-guard eval` asks for `{"logprobs": True}`); None: the writer's own."""


@dataclass(frozen=True)
class ReplyPolicy:
    """The reply steps for one caller: its settings, its guard (whose judge quotes and checks) and its writer
    (who writes answers and names the part a clarifying message asks about)."""

    settings: ReplySettings
    guard: SufficiencyGuard
    writer: BaseChatModel
    child: Children = untraced
    single_pass: bool = False
    """The verdict was the first token of the writer's own generation: a reply may repeat it first."""

    def reply(
        self,
        question: str,
        verdict: Verdict,
        *,
        streaming: bool = False,
        written: str | None = None,
        answer_stream: Any = None,
    ) -> Steps[None]:
        """What the user gets for `verdict`, as chunks. `written`: an answer already written (an agent's), used
        instead of writing one; `answer_stream`: the single-pass generation that goes on after its verdict;
        `streaming`: an unchecked written answer is shown as it is generated."""
        if verdict.decision is Decision.REFUSE:
            yield self.header(question, verdict, Decision.REFUSE)
            return
        if verdict.decision is Decision.CLARIFY and not touches(question, verdict.documents):
            yield self.header(question, verdict, Decision.REFUSE).model_copy(
                update={"reason": f"{verdict.reason}; refused: {UNTOUCHED}"}
            )
            return
        answering = verdict.decision is Decision.ANSWER
        quote = None
        if answering and self.settings.answer_style == "quote" and answer_stream is None:
            quote = yield from self._quote(question, verdict)
        if quote is not None or (answering and (self.settings.grounding or self.settings.verify_answer)):
            yield from self._checked(question, verdict, quote, written, answer_stream)
            return
        yield self.header(question, verdict, verdict.decision)
        if not answering:
            yield (yield from self._clarification(question, verdict))
        elif written is not None:
            yield GuardedAnswerChunk(answer=written)
        elif answer_stream is not None:
            yield from self._relay(answer_stream)
        elif streaming:
            yield from self._relay(
                (yield OpenStream(self.writer, self._answer_prompt(verdict), self.child("generate")))
            )
        else:
            text, message = yield from self._written(verdict, None, None)
            if text:
                yield GuardedAnswerChunk(answer=text, written=message)

    def header(
        self, question: str, verdict: Verdict, decision: Decision, check: AnswerCheck | None = None
    ) -> GuardedAnswerChunk:
        """The first chunk: the verdict, and the decision the user gets (the gate's, unless a check withheld the
        answer); a refusal's text comes with it."""
        withheld = check is not None and not check.passed
        return GuardedAnswerChunk(
            question=question,
            decision=decision,
            p_sufficient=verdict.p_sufficient,
            sources=sources_of(verdict.documents),
            verdict=verdict,
            message=refusal_message(verdict.error, self.settings.refusal) if decision is Decision.REFUSE else None,
            reason=f"{verdict.reason}; the answer was withheld: the answer check gave {check.reason}"
            if withheld and check is not None
            else verdict.reason,
            answer_check=check,
        )

    # --- an answer, checked -----------------------------------------------------------------------------

    def _checked(
        self, question: str, verdict: Verdict, quote: Quote | None, written: str | None, answer_stream: Any
    ) -> Steps[None]:
        """The answer (the quote, else the written answer, tidied) checked, then shown; or, when a check fails,
        what the passages say (or a clarifying message, or the refusal) in its place. The header waits for the
        checks, so it carries the final decision. A quote is grounded by construction."""
        message = None
        if quote is not None:
            answer = quote.answer()
            grounded = about_subject(quoted(quote), question, verdict.documents, [quote.label])
        else:
            text, message = yield from self._written(verdict, written, answer_stream)
            answer = tidy_answer(text, question)
            grounded = written_check(answer, question, verdict.documents) if self.settings.grounding else None
        check = yield from self._verified(answer, grounded, verdict)
        decision = _after_check(check)
        if decision is not Decision.ANSWER:
            check = check.model_copy(update={"draft": answer})
        yield self.header(question, verdict, decision, check).model_copy(update={"written": message})
        if decision is Decision.ANSWER:
            yield GuardedAnswerChunk(answer=answer)
        elif check.off_subject:
            yield GuardedAnswerChunk(
                message=off_subject_message(question, verdict.documents, check.cited, check.off_subject)
            )
        elif check.unsupported:
            yield GuardedAnswerChunk(message=unsupported_message(question, verdict.documents, check.unsupported))
        elif decision is Decision.CLARIFY:
            yield (yield from self._clarification(question, verdict))

    def _written(
        self, verdict: Verdict, written: str | None, answer_stream: Any
    ) -> Steps[tuple[str, BaseMessage | None]]:
        """The written answer: the one handed over, the single-pass generation read to its end, or the writer's
        reply; with the writer's message when it wrote one (`GuardedAnswer.written`)."""
        if written is not None:
            return written, None
        if answer_stream is not None:
            return (yield from self._relay(answer_stream, show=False)), None
        message = yield Invoke(
            self.writer, self._answer_prompt(verdict), self.child("generate"), self.settings.answer_options or {}
        )
        return self._without_lead(message.text), message

    def _verified(self, answer: str, grounded: AnswerCheck | None, verdict: Verdict) -> Steps[AnswerCheck]:
        """After the checks that need no model (`grounded`), when they passed and it is on, the model's own
        check, which keeps what the grounding check recorded."""
        if grounded is not None and not (grounded.passed and self.settings.verify_answer):
            return grounded
        threshold = self.settings.verify_threshold
        try:
            asked = check_prompt(self._answer_prompt(verdict), answer)
            reply = yield Invoke(self.guard.judge, asked, self.child("check"), self.guard.call_options)
            check = read_check(reply, threshold)
        except Exception as exc:
            check = check_failed(exc, threshold)
        if grounded is None:
            return check
        kept = {
            "checked": grounded.checked,
            "cited": grounded.cited,
            "min_token_p": grounded.min_token_p,
            "joint_logprob": grounded.joint_logprob,
            "reason": f"{grounded.reason}; {check.reason}",
        }
        return check.model_copy(update=kept)

    def _quote(self, question: str, verdict: Verdict) -> Steps[Quote | None]:
        """The answer-start call run on for a few words, and the passage span they are; None when they are no
        span or the call failed: the answer is then written."""
        options = self.settings.quote_options or {"max_tokens": QUOTE_TOKENS}
        asked = self.guard.messages(question, verdict.documents, EXTRACT_INSTRUCTION)
        try:
            reply = yield Invoke(
                self.guard.judge, asked, self.child("quote"), self.guard.fork_options(EXTRACT_INSTRUCTION, options)
            )
        except Exception as exc:
            log.warning("the quote could not be asked, using a written answer: %s", exc)
            return None
        return read_quote(reply, verdict.documents, question)

    # --- a clarifying message ---------------------------------------------------------------------------

    def _clarification(self, question: str, verdict: Verdict) -> Steps[GuardedAnswerChunk]:
        """The clarifying message, assembled around the unanswered part (`clarify.py`): the judged part that
        scored lowest, else the writer's copy of it. When the writer fails, the message is assembled without a
        part: it states only what the passages say, so nothing is lost but the part's name."""
        part = verdict.uncovered_part
        if part is None:
            try:
                reply = yield Invoke(
                    self.writer, reply_prompt(verdict.prompt, Decision.CLARIFY), self.child("generate")
                )
                part = self._without_lead(reply.text)
            except Exception as exc:
                log.warning("the unanswered part could not be named, clarifying without it: %s", exc)
                part = ""
        return GuardedAnswerChunk(message=clarifying_message(question, verdict.documents, part))

    # --- text ---------------------------------------------------------------------------------------------

    def _answer_prompt(self, verdict: Verdict) -> list[BaseMessage]:
        return reply_prompt(verdict.prompt, Decision.ANSWER) or []

    def _relay(self, pieces: Any, *, show: bool = True) -> Steps[str]:
        """A model's stream as answer chunks (in single-pass mode without the verdict word it opens with);
        returns the whole text. `show=False` holds it back for the checks."""
        lead = VerdictLead() if self.single_pass else None
        texts: list[str] = []
        while (piece := (yield NextPiece(pieces))) is not None:
            if text := (lead.feed(piece.text) if lead else piece.text):
                texts.append(text)
                if show:
                    yield GuardedAnswerChunk(answer=text)
        if lead and (rest := lead.flush()):
            texts.append(rest)
            if show:
                yield GuardedAnswerChunk(answer=rest)
        return "".join(texts)

    def _without_lead(self, text: str) -> str:
        """In single-pass mode a reply tends to repeat its verdict word first: drop it."""
        if not self.single_pass:
            return text
        lead = VerdictLead()
        return lead.feed(text) + lead.flush()


def _after_check(check: AnswerCheck) -> Decision:
    """The decision the user gets after the answer's checks."""
    if check.passed:
        return Decision.ANSWER
    log.info("the answer failed its check, withholding it: %s", check.reason)
    return Decision.REFUSE if check.untrusted else Decision.CLARIFY
