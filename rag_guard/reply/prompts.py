"""The prompts that write a reply after the verdict, and the refusal.

Each continues the judge's own prompt (`Verdict.prompt`): the verdict as the assistant's turn, then one short
user turn with the next instruction, so a model that keeps the judge's cache evaluates only those few tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from rag_guard.judging.decision import Decision
from rag_guard.judging.prompts import follow_up
from rag_guard.judging.verdict import ErrorInfo

ANSWER_INSTRUCTION = (
    "Task: answer the question directly from the passages: give the answer itself first, cite its passage as "
    "[n] right after it, and stop. At most two sentences; state nothing the passages do not."
)
"""Kept short: after the verdict it is nearly all the answer has left to evaluate. It stays out of the system
text (which the guard shares: there it made the guard score unanswerable questions higher) and gives no
example answer (one was copied into answers); docs/studies/answers.md has the wordings measured."""

CLARIFY_INSTRUCTION = (
    "Task: the passages above do not answer all of the question. Copy, word for word, the part of the question "
    'they do not answer, and reply with those words only. For example, for "When did the bridge open, and who '
    'paid for it?" with passages that give only the opening, reply: who paid for it'
)
"""The model names only what is unanswered, in the question's words; `clarify.py` builds the message around
it. (Asked to say what the passages do cover, a small model states things they do not:
docs/studies/answers.md.)"""

VERIFY_INSTRUCTION = (
    "Task: check your answer against the passages. Does it answer the question exactly as asked, with "
    "every fact in it stated in the passages?\n"
    "Reply with one word: True or False."
)
"""Asked after the drafted answer, which stays the answer: one more token, no second generation."""

REFUSAL = "I can't answer that from the documents I have: they do not appear to contain the information needed."


def refusal_message(error: ErrorInfo | None, refusal: str = REFUSAL) -> str:
    """The reply to a refused question: `refusal`, or, when nothing could be judged (an outage), what failed,
    never that the documents lack the answer."""
    if error is None:
        return refusal
    return (
        "I could not check this question against the documents, so I have not answered it. "
        f"What failed: {error.message}."
    )


def reply_prompt(judged: Sequence[BaseMessage], decision: Decision) -> list[BaseMessage] | None:
    """The prompt that writes the reply a verdict calls for, continuing the judge's prompt `judged`: the
    answer, the clarifying message, or None for a refusal, which generates nothing."""
    if decision is Decision.ANSWER:
        return follow_up(judged, "True", ANSWER_INSTRUCTION)
    if decision is Decision.CLARIFY:
        return follow_up(judged, "False", CLARIFY_INSTRUCTION)
    return None
