"""The check after the answer: one more True/False token, read as a probability like the verdict. Pure.

The gate judges the passages before anything is written; the check judges what was written. It continues
the answer's own prompt (the guard's prompt, the verdict, the answer instruction, the answer), so on the
embedded model and on caching servers it evaluates only the answer's tokens and one short instruction.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from rag_guard.judging.logprobs import LogprobError, p_true, parse_logprobs
from rag_guard.judging.prompts import VERIFY_INSTRUCTION, follow_up


class AnswerCheck(BaseModel):
    """What the check said about one answer."""

    p_supported: float | None
    """P(True) of "does the answer answer the question, with every fact in it from the passages?"; None when
    no trustworthy probability came back (the answer is then withheld)."""
    threshold: float
    passed: bool
    reason: str


def check_prompt(answer_prompt: Sequence[BaseMessage], answer: str) -> list[BaseMessage]:
    return follow_up(answer_prompt, answer, VERIFY_INSTRUCTION)


def read_check(reply: BaseMessage, threshold: float) -> AnswerCheck:
    """The check's reply as a verdict on the answer; no logprobs, or no True/False among them, fails it."""
    try:
        p = p_true(parse_logprobs(reply.response_metadata.get("logprobs"))[0])
    except LogprobError as exc:
        return AnswerCheck(
            p_supported=None, threshold=threshold, passed=False, reason=f"no trustworthy probability ({exc})"
        )
    passed = p >= threshold
    relation = ">=" if passed else "<"
    return AnswerCheck(
        p_supported=p, threshold=threshold, passed=passed, reason=f"P(supported) {p:.3f} {relation} {threshold}"
    )


def check_failed(exc: Exception, threshold: float) -> AnswerCheck:
    """The check's call itself failed: the answer is withheld, as when no probability comes back."""
    return AnswerCheck(
        p_supported=None,
        threshold=threshold,
        passed=False,
        reason=f"the check could not be asked ({type(exc).__name__}: {exc})",
    )
