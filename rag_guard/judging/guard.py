"""The sufficiency guard: (question, documents) → `Verdict`, as a LangChain Runnable.

One generated token with its top alternatives per question asked: the verdict, one per standalone part of
a question that asks several things, and any signal configured (the first word of a short extractive
answer, the reversed question); one probability. Everything that can go wrong (the
model call, a reply without logprobs, no True/False among the alternatives) ends in a refusal that carries
its reason: the guard fails closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import patch_config
from pydantic import ConfigDict, Field, model_validator

from rag_guard.errors import GuardFailure, InvalidQuestionError
from rag_guard.judging.calibration import Calibration
from rag_guard.judging.decision import Decision, check_thresholds, decide, decide_with_probe
from rag_guard.judging.logprobs import LogprobError, TokenLogprob, alternatives, answer_start, p_true, parse_logprobs
from rag_guard.judging.parts import standalone_parts
from rag_guard.judging.probe import CALLS, Probe, ProbeError, unasked_calls
from rag_guard.judging.prompts import (
    ABSTAIN_WORD,
    EXTRACT_INSTRUCTION,
    GUARD_INSTRUCTION,
    MISSING_INSTRUCTION,
    after_context,
    build_messages,
)
from rag_guard.judging.question import clean_question
from rag_guard.judging.signals import GateSignal, Signals
from rag_guard.judging.verdict import DecisionRule, ErrorInfo, Verdict
from rag_guard.models.failures import explain_failure, explain_missing_logprobs, failure_kind
from rag_guard.steps import Invoke, Steps, arun, run
from rag_guard.text.injection import sanitise

log = logging.getLogger(__name__)


class GuardInput(TypedDict):
    question: str
    documents: list[Document]


def verdict_from_reply(
    message: BaseMessage,
    answer_threshold: float,
    clarify_threshold: float,
    guard_s: float | None = None,
    *,
    missing_logprobs: str | None = None,
    calibration: Calibration | None = None,
    missing: BaseMessage | None = None,
    extract: BaseMessage | None = None,
    retrieval: float | None = None,
    probe: Probe | None = None,
    parts: dict[str, BaseMessage] | None = None,
) -> Verdict:
    """Read P(sufficient) off the reply's first token; refuse with the reason if it cannot be trusted.

    `missing_logprobs` explains a reply without any logprobs (which server, what to upgrade). `missing` is
    the reply to the reversed question, `extract` the first token of a short extractive answer and
    `retrieval` the best passage's similarity, when measured; `probe` scores the hidden state the reply
    carries. `parts` are the verdicts on each part of a question that asks several things (`parts.py`): the
    verdict signal is then the least of them and the whole question's. With `calibration` the thresholds
    apply to its combination of the signals, else to `Signals.combined` (the verdict alone when nothing else
    is).
    """
    try:
        position = _first_position(message, missing_logprobs)
        raw_p = p_true(position)
        p_parts = {part: p_true(_first_position(reply, missing_logprobs)) for part, reply in (parts or {}).items()}
        p_missing = p_true(_first_position(missing, missing_logprobs)) if missing is not None else None
        p_extract = (
            answer_start(_first_position(extract, missing_logprobs), ABSTAIN_WORD) if extract is not None else None
        )
        p_probe = probe.probability(_states(message, extract)) if probe else None
    except (LogprobError, ProbeError) as exc:
        return Verdict(
            decision=Decision.REFUSE,
            p_sufficient=None,
            token=message.text[:20] or None,
            reason=f"refused: no trustworthy probability ({exc})",
            error=ErrorInfo(kind="no_probability", message=f"no trustworthy probability: {exc}"),
            guard_s=guard_s,
        )
    signals = Signals(
        verdict=min([raw_p, *p_parts.values()]),
        extract=p_extract,
        missing=p_missing,
        retrieval=retrieval,
        probe=p_probe,
    )
    if calibration and (absent := calibration.signals - signals.features().keys()):
        why = (
            f"the calibration weighs {sorted(absent)}, which could not be measured (the retrieval signal needs "
            "the retriever's similarity in each document's metadata['score'])"
        )
        return Verdict(
            decision=Decision.REFUSE,
            p_sufficient=None,
            raw_p=raw_p,
            signals=signals,
            reason=f"refused: {why}",
            error=ErrorInfo(kind="signal_unmeasured", message=why),
            guard_s=guard_s,
        )
    max_lowering = probe.max_lowering if probe is not None else None

    def scored(measured: Signals) -> tuple[float, float]:
        """P(sufficient) before and after the probe's cap."""
        uncapped = calibration.apply(measured.features()) if calibration else measured.combined()
        return uncapped, measured.capped(uncapped, max_lowering)

    uncapped, p = scored(signals)
    if signals.probe is None:
        decision = decide(p, answer_threshold, clarify_threshold)
    else:
        decision = decide_with_probe(p, signals.combined(), answer_threshold, clarify_threshold)
    rule = decision_rule(decision, p, clarify_threshold)
    reason = plain_reason(rule, p, signals.combined(), answer_threshold, clarify_threshold)
    if signals.verdict < raw_p:  # a part lowered it; the whole question's own score, for comparison
        _, p_whole = scored(signals.model_copy(update={"verdict": raw_p}))
        weakest = min(p_parts, key=p_parts.__getitem__)
        if decision is Decision.REFUSE and decide(p_whole, answer_threshold, clarify_threshold) is not Decision.REFUSE:
            decision, rule = Decision.CLARIFY, "partial"  # the passages answer another part: say which is missing
            reason = f"p_sufficient {p:.3f} < clarify_threshold {clarify_threshold}: {MEANINGS[rule]}"
        reason += f' (its least covered part, "{weakest}"; the whole question scored {p_whole:.3f})'
    if p < uncapped:
        reason += f" (held at the score without the probe; with it {uncapped:.3f}: the probe may lower, never raise)"
    elif p > uncapped:
        reason += f" (the probe's doubt bounded: with it alone {uncapped:.3f})"
    return Verdict(
        decision=decision,
        p_sufficient=p,
        raw_p=raw_p,
        signals=signals,
        token=position.token,
        logprob=position.logprob,
        alternatives=alternatives(position),
        reason=reason,
        rule=rule,
        guard_s=guard_s,
        parts=p_parts,
    )


def _first_position(message: BaseMessage, missing_logprobs: str | None) -> TokenLogprob:
    raw = message.response_metadata.get("logprobs")
    if not raw and missing_logprobs:
        raise LogprobError(missing_logprobs)
    return parse_logprobs(raw)[0]


@dataclass(frozen=True)
class JudgePrompt:
    """The judge's prompt, the question and documents it holds, and how many documents were given."""

    messages: list[BaseMessage]
    question: str
    documents: list[Document]
    given: int
    instruction: str
    """The instruction the prompt ends with (the guard's, or single-pass mode's)."""
    parts: list[str]
    """The question's parts, each judged too, when it asks several things and the guard judges parts."""


class SufficiencyGuard(RunnableSerializable[GuardInput, Verdict]):
    """Judge whether `documents` are enough to answer `question`; plug into any LCEL chain.

    Input: `{"question": str, "documents": list[Document]}`. Output: `Verdict`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    judge: BaseChatModel
    """A chat model that returns logprobs in `response_metadata["logprobs"]`."""
    judge_kwargs: dict[str, Any] | None = None
    """Call options that make the judge generate one token with alternatives; None uses OpenAI's names
    (`max_tokens=1, logprobs=True, top_logprobs=...`), which ChatOpenAI and the embedded model take."""
    answer_threshold: float = Field(0.5, ge=0, le=1)
    clarify_threshold: float = Field(0.2, ge=0, le=1)
    top_logprobs: int = Field(20, ge=2, le=20)
    instruction: str = GUARD_INSTRUCTION
    context_window: int | None = None
    """The judge's context window in tokens; when set, lower-ranked documents are dropped to fit."""
    token_counter: Callable[[Sequence[BaseMessage]], int] | None = None
    """Counts a prompt's tokens for `context_window`; None uses the judge's `get_num_tokens_from_messages`."""
    reserve_tokens: int = 320
    """Tokens kept free for the instruction that follows and for the answer generated from the same prefix."""
    fail_mode: Literal["refuse", "error"] = "refuse"
    """Without a trustworthy probability: refuse with the reason, or raise `GuardFailure`. Never answer."""
    signals: tuple[GateSignal, ...] = ("verdict",)
    """What P(sufficient) is made of: the verdict alone unless asked; `extract` and `missing` cost one more
    token each from the same cached passages."""
    calibration: Calibration | None = None
    """Maps the signals to a calibrated probability before the thresholds (`rag-guard calibrate`)."""
    instruction_first: bool = False
    """The instruction and question before the passages (gives up the prefix the answer would reuse)."""
    few_shot: bool = False
    """Worked near-miss examples in the system text (`prompts.FEW_SHOT`), a prompt variant of the study."""
    probe: Probe | None = None
    """Reads P(answerable) off the judge's hidden state in the calls it names (embedded judge only); used when
    `signals` include `probe`. Without `calibration`, its `combination` makes P(sufficient)."""
    judge_parts: bool = True
    """Judge each part of a question that asks several things too ("When was it launched, and what did it
    cost?"), one more token each: the whole question's verdict leans on the part the passages answer."""
    read_layers: tuple[int, ...] = ()
    """Further layers whose state in the verdict's and the answer start's calls the `Verdict` carries in
    `hidden_states` (for fitting)."""

    @model_validator(mode="after")
    def _ordered(self) -> SufficiencyGuard:
        check_thresholds(self.answer_threshold, self.clarify_threshold)
        if "probe" in self.signals and self.probe is None:
            raise ValueError("signals include probe: give the guard a probe")
        if "probe" in self.signals and self.probe is not None and (unasked := unasked_calls(self.probe, self.signals)):
            raise ValueError(f"the probe reads the state of the {' and '.join(unasked)} call: add it to signals")
        if self.calibration is not None and set(self.calibration.weights) != set(self.signals):
            raise ValueError(f"calibration combines {sorted(self.calibration.weights)}, not signals {self.signals}")
        return self

    @property
    def combination(self) -> Calibration | None:
        """What turns the signals into P(sufficient): the fitted calibration, else the probe's own."""
        if self.calibration is not None:
            return self.calibration
        return self.probe.combination if self.probe is not None and "probe" in self.signals else None

    @property
    def call_options(self) -> dict[str, Any]:
        if self.judge_kwargs is not None:
            return self.judge_kwargs
        return {"max_tokens": 1, "logprobs": True, "top_logprobs": self.top_logprobs}

    def state_options(self, call: str) -> dict[str, Any]:
        """A one-token call's options: the one token, and the hidden states the probe (and `read_layers`) read
        in this call."""
        layers = set(self.read_layers) if call in CALLS else set()
        if self.probe is not None and "probe" in self.signals and call in self.probe.calls:
            layers |= set(self.probe.layers)
        return {**self.call_options, "hidden_layers": sorted(layers)} if layers else self.call_options

    # --- preparing the prompt -------------------------------------------------------------------------

    def messages(
        self, question: str, documents: Sequence[Document], instruction: str | None = None
    ) -> list[BaseMessage]:
        """The judge's prompt, laid out as configured; `instruction` replaces the guard's own."""
        return build_messages(
            question,
            documents,
            instruction or self.instruction,
            instruction_first=self.instruction_first,
            few_shot=self.few_shot,
        )

    def fit(self, question: str, documents: Sequence[Document]) -> list[Document]:
        """The documents, lowest-ranked dropped until the prompt fits the context window; never the question."""
        docs = list(documents)
        if self.context_window is None:
            return docs
        budget = self.context_window - self.reserve_tokens
        count = self.token_counter or self.judge.get_num_tokens_from_messages
        while docs and count(self.messages(question, docs)) > budget:
            docs.pop()
        if not docs and (needed := count(self.messages(question, docs))) > budget:
            raise InvalidQuestionError(
                f"The question is too long for the model: with the prompt around it, it takes {needed} of the "
                f"{budget} tokens the context window leaves. Shorten it, or raise model.n_ctx."
            )
        return docs

    # --- the Runnable ---------------------------------------------------------------------------------

    def invoke(self, input: GuardInput, config: RunnableConfig | None = None, **kwargs: Any) -> Verdict:
        return self._call_with_config(self._judge, input, config, run_type="chain")

    async def ainvoke(self, input: GuardInput, config: RunnableConfig | None = None, **kwargs: Any) -> Verdict:
        return await self._acall_with_config(self._ajudge, input, config, run_type="chain")

    def prepare(self, question: str, given: Sequence[Document], instruction: str | None = None) -> JudgePrompt:
        """The prompt with the documents that fit; `instruction` replaces the guard's (single-pass mode, whose
        one generation cannot judge parts)."""
        question = clean_question(question)
        parts = standalone_parts(question) if self.judge_parts and instruction is None else []
        instruction = instruction or self.instruction
        documents = self.fit(question, given)
        messages = self.messages(question, documents, instruction)
        return JudgePrompt(messages, question, documents, len(given), instruction, parts)

    def _judge(self, input: GuardInput, run_manager: CallbackManagerForChainRun, config: RunnableConfig) -> Verdict:
        return run(self._judging(input, patch_config(config, callbacks=run_manager.get_child())))

    async def _ajudge(
        self, input: GuardInput, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> Verdict:
        return await arun(self._judging(input, patch_config(config, callbacks=run_manager.get_child())))

    def _judging(self, input: GuardInput, config: RunnableConfig) -> Steps[Verdict]:
        """The one-token calls (`steps.py`: one path for invoke and ainvoke), then the verdict read off them."""
        prompt = self.prepare(input["question"], input.get("documents") or [])
        started = time.perf_counter()
        replies: dict[str, BaseMessage] = {}
        try:
            for name, asked, options in self._asks(prompt):
                replies[name] = yield Invoke(self.judge, asked, config, options)
        except Exception as exc:
            return self.failed(exc, prompt, time.perf_counter() - started)
        parts = {part: replies.pop(part) for part in prompt.parts}
        return self.finish(replies.pop("verdict"), prompt, time.perf_counter() - started, parts=parts, **replies)

    def _asks(self, prompt: JudgePrompt) -> list[tuple[str, list[BaseMessage], dict[str, Any]]]:
        """The one-token calls by `finish`'s keyword (a part's call by the part), each with its call options: the
        same passages with another instruction, or a part in the question's place. The verdict goes last, so
        its prompt is the one left cached for the answer.

        An embedded judge is told each prompt's own ending (`branch`): it evaluates the shared passages once
        and forks there, so each further question costs only its own ending.
        """
        instructions = {"extract": EXTRACT_INSTRUCTION, "missing": MISSING_INSTRUCTION}
        asks = [
            (
                name,
                self.messages(prompt.question, prompt.documents, ask),
                self.fork_options(ask, self.state_options(name)),
            )
            for name, ask in instructions.items()
            if name in self.signals
        ]
        for part in prompt.parts:  # asked in the whole question's place, after the same passages
            asked = self.messages(part, prompt.documents, prompt.instruction)
            asks.append((part, asked, self.fork_options(after_context(part, prompt.instruction))))
        return [
            *asks,
            ("verdict", prompt.messages, self.fork_options(prompt.instruction, self.state_options("verdict"))),
        ]

    def fork_options(self, instruction: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """`options` (default: the one-token call's) for a prompt that ends with `instruction` after the
        shared passages and question: a judge that forks prompts (`ChatLlamaCpp`) is told where it begins."""
        options = options or self.call_options
        if getattr(self.judge, "forks_prompts", False) and not self.instruction_first:
            return {**options, "branch": instruction}
        return options

    def finish(
        self,
        reply: BaseMessage,
        prompt: JudgePrompt,
        seconds: float,
        *,
        extract: BaseMessage | None = None,
        missing: BaseMessage | None = None,
        parts: dict[str, BaseMessage] | None = None,
    ) -> Verdict:
        """The verdict read off `reply`'s first token (a whole reply, or the first chunk of a stream), with
        the replies to the extractive and the reversed question when those signals are measured, and to each
        of the question's parts."""
        verdict = verdict_from_reply(
            reply,
            self.answer_threshold,
            self.clarify_threshold,
            seconds,
            missing_logprobs=explain_missing_logprobs(self.judge),
            calibration=self.combination,
            missing=missing,
            extract=extract,
            retrieval=_best_similarity(prompt.documents) if "retrieval" in self.signals else None,
            probe=self.probe if "probe" in self.signals else None,
            parts=parts,
        )
        verdict.documents_used = len(prompt.documents)
        verdict.prompt, verdict.documents = prompt.messages, prompt.documents
        if self.read_layers:
            verdict.hidden_states = _states(reply, extract)
        if verdict.p_sufficient is None:
            return self._untrusted(verdict, None)
        if len(prompt.documents) < prompt.given:
            verdict.context_truncated = True
            verdict.reason += "; lower-ranked passages were left out to fit the context window"
        withheld = sum(sanitise(doc.page_content)[1] for doc in prompt.documents)
        if withheld:
            verdict.instructions_withheld = withheld
            verdict.reason += f"; {withheld} sentence(s) addressed to the assistant were withheld from the passages"
        return verdict

    def failed(self, exc: Exception, prompt: JudgePrompt, seconds: float) -> Verdict:
        """The verdict when the model call raised: refuse with the explained cause, or raise."""
        why = explain_failure(exc, self.judge)
        verdict = Verdict(
            decision=Decision.REFUSE,
            p_sufficient=None,
            reason=f"refused: {why}",
            error=ErrorInfo(kind=failure_kind(exc), message=why),
            documents_used=len(prompt.documents),
            guard_s=seconds,
            prompt=prompt.messages,
            documents=prompt.documents,
        )
        return self._untrusted(verdict, exc)

    def _untrusted(self, verdict: Verdict, exc: Exception | None) -> Verdict:
        """Log a verdict without a probability, then refuse with it or raise, as `fail_mode` says."""
        log.error("guard has no trustworthy probability: %s", verdict.reason)
        if self.fail_mode == "error":
            raise GuardFailure(verdict.reason.removeprefix("refused: ")) from exc
        return verdict


MEANINGS: dict[DecisionRule, str] = {
    "stated": "the passages appear to state the answer",
    "partial": "the passages may answer only part of the question, so it asks",
    "detail_doubted": "the passages are on the question's topic while a detail may not match, so it asks",
    "not_stated": "the passages do not appear to answer it",
}
"""Each decision rule in plain words: the end of a verdict's reason, and the demo's reason column."""


def decision_rule(decision: Decision, p: float, clarify_at: float) -> DecisionRule:
    """Which of the four rules made the decision (a clarification under clarify_threshold is the probe's doubt)."""
    if decision is Decision.ANSWER:
        return "stated"
    if decision is Decision.REFUSE:
        return "not_stated"
    return "partial" if p >= clarify_at else "detail_doubted"


def plain_reason(rule: DecisionRule, p: float, prompt_level: float, answer_at: float, clarify_at: float) -> str:
    """Why this decision: the score against the thresholds, then what the rule means."""
    bound = {
        "stated": f">= answer_threshold {answer_at}",
        "partial": f"is between clarify_threshold {clarify_at} and answer_threshold {answer_at}",
        "detail_doubted": f"< clarify_threshold {clarify_at}, but {prompt_level:.3f} without the hidden-state probe",
        "not_stated": f"< clarify_threshold {clarify_at}",
    }[rule]
    return f"p_sufficient {p:.3f} {bound}: {MEANINGS[rule]}"


def _states(verdict: BaseMessage, extract: BaseMessage | None) -> dict[str, dict[int, list[float]]]:
    """The hidden states the replies carry, by call."""
    replies = {"verdict": verdict, "extract": extract}
    return {
        call: states
        for call, reply in replies.items()
        if reply is not None and (states := reply.response_metadata.get("hidden_states"))
    }


def _best_similarity(documents: Sequence[Document]) -> float | None:
    """The retriever's similarity of the best passage; None when the retriever gives no scores."""
    scores = [doc.metadata.get("score") for doc in documents]
    if any(not isinstance(score, int | float) for score in scores):
        return None
    return float(max(scores, default=0.0))  # type: ignore[type-var]
