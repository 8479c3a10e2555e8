"""What the guard returns: its judgement, and what it judged on (the prompt and the documents it kept)."""

from __future__ import annotations

from typing import Literal

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from rag_guard.judging.decision import Decision
from rag_guard.judging.signals import Signals
from rag_guard.models.failures import FailureKind

DecisionRule = Literal["stated", "partial", "detail_doubted", "not_stated"]
"""The four ways a measured score becomes a decision (`guard.MEANINGS` says each in words)."""
ErrorKind = FailureKind | Literal["no_probability", "signal_unmeasured", "retrieval_failed"]


class ErrorInfo(BaseModel):
    """Why the guard could not judge: an outage or a fault, not what the documents say. The decision is still
    `refuse` (it fails closed); this tells a caller, a script or a monitor that nothing was judged."""

    kind: ErrorKind
    """`timeout`, `unreachable`, `not_found`, `denied`, `server_error`, `call_failed`: the model call;
    `no_probability`: a reply without usable logprobs (or hidden state); `signal_unmeasured`: a calibrated
    signal could not be measured; `retrieval_failed`: the store."""
    message: str
    """What failed and how to fix it."""


class Verdict(BaseModel):
    """The guard's judgement of one (question, documents) pair."""

    decision: Decision
    p_sufficient: float | None
    """P(True) normalised over the True/False spellings, combined with the other signals and calibrated as
    `guard` says; None when no trustworthy probability was obtained."""
    raw_p: float | None = None
    """The verdict token's own P(True), before calibration or debiasing."""
    signals: Signals | None = None
    """Every signal measured for this verdict (`guard.signals`), from which `p_sufficient` was made."""
    token: str | None = None
    """The token the model generated at the verdict position."""
    logprob: float | None = None
    alternatives: dict[str, float] = Field(default_factory=dict)
    """The chosen token and its alternatives with their linear probabilities exp(logprob)."""
    reason: str
    """Why this decision: the probability against the thresholds, or the fault that made the guard refuse."""
    parts: dict[str, float] = Field(default_factory=dict)
    """For a question that asks several things (`parts.py`), each part's own P(True); the verdict signal is the
    least of them and the whole question's. Empty for a question that asks one thing."""
    rule: DecisionRule | None = None
    """Which rule made the decision: `stated` (answer), `partial` (clarify, in the band), `detail_doubted`
    (clarify: below the band, but not without the probe), `not_stated` (refuse); None without a probability."""
    error: ErrorInfo | None = None
    """Set when no trustworthy probability could be had (the decision is then `refuse`)."""
    context_truncated: bool = False
    """True when lower-ranked chunks were left out to fit the model's context window."""
    documents_used: int | None = None
    """How many of the documents, from the top rank down, the judge saw; the answer sees the same ones."""
    instructions_withheld: int = 0
    """Sentences in those documents that addressed the model ("ignore previous instructions", "reply True")
    and were replaced by a marker before the judge and the answerer saw them."""
    guard_s: float | None = None
    """Wall-clock seconds of the judge's calls."""
    hidden_states: dict[str, dict[int, list[float]]] | None = Field(None, exclude=True, repr=False)
    """The judge's states for the guard's `read_layers`, by call (`verdict`, `extract`), for fitting a probe;
    never serialised."""
    prompt: list[BaseMessage] = Field(default_factory=list, exclude=True, repr=False)
    """The judge's prompt, as asked: the answer and the clarifying message continue it (its cache serves
    them); never serialised."""
    documents: list[Document] = Field(default_factory=list, exclude=True, repr=False)
    """The documents the judge saw (those that fit its window, from the top rank down); never serialised."""

    @property
    def uncovered_part(self) -> str | None:
        """The part of the question the clarifying message names, with no generation needed to find it: the
        judged part that scored lowest, when it scored below the whole question or when several parts were
        judged (one of them is then the likeliest gap); None when no part was judged."""
        if not self.parts or self.raw_p is None:
            return None
        weakest = min(self.parts, key=self.parts.__getitem__)
        return weakest if self.parts[weakest] < self.raw_p or len(self.parts) > 1 else None
