"""The checks after the answer, and their record. Pure.

The gate judges the passages before anything is written; the checks judge what was written. The grounding
check (`grounding.py`, on by default) looks for a written answer's numbers, names and quoted phrases in its
passages, after making sure it says more than the question did. The model's check (`guard.verify_answer`)
asks one more True/False token, read as a probability like the verdict; it continues the answer's
own prompt (the guard's prompt, the verdict, the answer instruction, the answer), so on the embedded model
and on caching servers it evaluates only the answer's tokens and one short instruction.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from rag_guard.judging.logprobs import LogprobError, p_true, parse_logprobs
from rag_guard.judging.prompts import follow_up
from rag_guard.reply.answer_text import restates_question
from rag_guard.reply.grounding import Grounding, grounded_in
from rag_guard.reply.prompts import VERIFY_INSTRUCTION
from rag_guard.reply.quote import Quote
from rag_guard.reply.subject import Subject, check_subject, cited_labels


class AnswerCheck(BaseModel):
    """What the checks said about one answer; a failed check means the user got a clarifying message (or,
    when the model's check gave no trustworthy probability, the refusal) instead of the answer."""

    passed: bool
    reason: str
    checked: list[str] = Field(default_factory=list)
    """The answer's numbers, names and quoted phrases that the grounding check looked for in its passages."""
    unsupported: list[str] = Field(default_factory=list)
    """Those the passages lack: the answer was withheld for them."""
    cited: list[int] = Field(default_factory=list)
    """The passages the answer cites (a quote's own; a written answer's [n], else those stating what it names)."""
    off_subject: list[str] = Field(default_factory=list)
    """The question's names, quoted terms and numbers that the cited passages' documents lack (`subject.py`):
    the answer, about something else, was withheld for them."""
    p_supported: float | None = None
    """The model's check: P(True) of "does the answer answer the question, with every fact in it from the
    passages?"; None when it was not asked or no trustworthy probability came back."""
    threshold: float | None = None
    min_token_p: float | None = None
    """A quoted span: the lowest probability among its content tokens (the model's least sure word)."""
    joint_logprob: float | None = None
    """A quoted span: the log of its whole probability."""
    untrusted: bool = False
    """The model's check was asked and gave no trustworthy probability: the answer is refused."""
    draft: str | None = Field(None, exclude=True, repr=False)
    """A withheld answer as the model wrote it, for `rag-guard eval` to score: never serialised, so what the
    guard withheld does not leave the process (server replies, `--json`)."""


def quoted(quote: Quote) -> AnswerCheck:
    """A quote-first answer's record: its span stands word for word in a passage, and so does its sentence."""
    return AnswerCheck(
        passed=True,
        reason=f"quoted word for word from passage [{quote.label}]"
        + (" (the sentence alone: the model's span only repeated the question)" if quote.echoes else ""),
        checked=[quote.span],
        min_token_p=quote.min_token_p,
        joint_logprob=quote.joint_logprob,
    )


def written_check(answer: str, question: str, documents: Sequence[Document]) -> AnswerCheck:
    """The checks that need no model, on an answer the model wrote: it must say something the question did
    not, its passages must state its numbers (with what they count), names, quoted phrases and content words,
    and the documents it cites must name what the question does."""
    if restates_question(answer, question):
        return AnswerCheck(passed=False, reason="the answer only restates the question")
    grounded = _grounding_check(grounded_in(answer, documents, question))
    return about_subject(grounded, question, documents, cited_labels(answer, documents))


def _grounding_check(grounding: Grounding) -> AnswerCheck:
    """The grounding check's record: withheld for what the passages lack, else passed."""
    if grounding.unsupported:
        reason = f"the passages do not state {', '.join(grounding.unsupported)}"
    else:
        reason = (
            f"the passages state all {len(grounding.checked)} checked item(s)"
            if grounding.checked
            else ("nothing checkable in the answer")
        )
    return AnswerCheck(
        passed=grounding.passed, reason=reason, checked=grounding.checked, unsupported=grounding.unsupported
    )


def about_subject(check: AnswerCheck, question: str, documents: Sequence[Document], cited: list[int]) -> AnswerCheck:
    """A passed check, then the subject check on the passages the answer cites: withheld when their documents do
    not name what the question does."""
    if not check.passed:
        return check
    subject = check_subject(question, documents, cited)
    if subject.passed:
        return check.model_copy(update={"cited": subject.cited})
    return check.model_copy(
        update={
            "passed": False,
            "cited": subject.cited,
            "off_subject": subject.missing,
            "reason": f"{_not_named(subject)}; {check.reason}",
        }
    )


def _not_named(subject: Subject) -> str:
    labels = ", ".join(f"[{label}]" for label in subject.cited)
    return f"the cited passage {labels} is from a document that does not name {', '.join(subject.missing)}"


def check_prompt(answer_prompt: Sequence[BaseMessage], answer: str) -> list[BaseMessage]:
    return follow_up(answer_prompt, answer, VERIFY_INSTRUCTION)


def read_check(reply: BaseMessage, threshold: float) -> AnswerCheck:
    """The check's reply as a verdict on the answer; no logprobs, or no True/False among them, fails it."""
    try:
        p = p_true(parse_logprobs(reply.response_metadata.get("logprobs"))[0])
    except LogprobError as exc:
        return AnswerCheck(
            threshold=threshold, passed=False, untrusted=True, reason=f"no trustworthy probability ({exc})"
        )
    passed = p >= threshold
    relation = ">=" if passed else "<"
    return AnswerCheck(
        p_supported=p, threshold=threshold, passed=passed, reason=f"P(supported) {p:.3f} {relation} {threshold}"
    )


def check_failed(exc: Exception, threshold: float) -> AnswerCheck:
    """The check's call itself failed: the answer is withheld, as when no probability comes back."""
    return AnswerCheck(
        threshold=threshold,
        passed=False,
        untrusted=True,
        reason=f"the check could not be asked ({type(exc).__name__}: {exc})",
    )
