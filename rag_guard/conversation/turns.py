"""A chat history → the question to judge and the earlier turns it may lean on. Pure.

OpenAI-style clients send the whole conversation on every request and the server keeps no state, so what
the guard said before is read back from the history. A reply to the guard's own clarifying question is
joined to the question it clarifies ("How many guns did she carry? (the Vasa)"); the guard's clarifying
questions are recognised by the mark the server puts at their end (`CLARIFY_MARK`), not by a trailing "?",
which any answer may have. A new question after a clarifying question starts a chain of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag_guard.errors import InvalidQuestionError
from rag_guard.text.words import QUESTION_OPENING, QUESTION_PREPOSITION

CLARIFY_MARK = "\u2063"
"""Ends every clarifying message the guard sends (U+2063, an invisible separator): how a later request shows
that the assistant turn before it was the guard asking, whatever the client did to the text around it."""
ASKS = re.compile(rf"^\W*(?:{QUESTION_PREPOSITION})?{QUESTION_OPENING}", re.IGNORECASE)
_CHAINED = re.compile(r"^(.*\?)\s*\(([^()]*)\)$", re.DOTALL)


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


@dataclass(frozen=True)
class Conversation:
    """The question to judge (a reply to a clarification joined to what it clarifies) and the turns before
    the chain it ends, for a follow-up to be read in."""

    question: str
    history: list[Turn] = field(default_factory=list)
    chained: bool = False
    """The question joins replies to the guard's clarifying questions: the rewrite makes it one question."""


def mark_clarifying(message: str) -> str:
    return message if message.endswith(CLARIFY_MARK) else f"{message}{CLARIFY_MARK}"


def is_guard_clarification(text: str) -> bool:
    return text.rstrip(" \n\t").endswith(CLARIFY_MARK)


def asks_anew(text: str) -> bool:
    """The turn is a question of its own ("Who commanded the Batavia?"), not a reply ("Just the guns.")."""
    return text.rstrip().endswith("?") or ASKS.match(text) is not None


def conversation_of(turns: Sequence[Turn]) -> Conversation:
    """The last user turn, with the earlier user turns it clarifies prepended in order, and the turns before.

    Walking back from the last user turn, while it is a reply (not a question of its own) to an assistant
    turn that is the guard's clarifying question, the chain takes in the user turn before that question; it
    stops at a new question, at any other assistant turn (an answer, a refusal) or at the start.
    """
    dialogue = [Turn(turn.role, turn.content.strip()) for turn in turns if turn.role in ("user", "assistant")]
    if not dialogue or dialogue[-1].role != "user":
        raise InvalidQuestionError("The last message must be the user's question (role 'user').")
    chain = [dialogue[-1].content]
    i = len(dialogue) - 2
    while (
        i >= 1
        and dialogue[i].role == "assistant"
        and is_guard_clarification(dialogue[i].content)
        and dialogue[i - 1].role == "user"
        and not asks_anew(chain[-1])
    ):
        chain.append(dialogue[i - 1].content)
        i -= 2
    original, *replies = reversed(chain)
    question = original if not replies else f"{original} ({'; '.join(r for r in replies if r)})"
    return Conversation(question=question, history=dialogue[: i + 1], chained=bool(replies))


def unchained(question: str) -> tuple[str, str] | None:
    """A chained question (`conversation_of`'s "question (reply; reply)") as the question and its replies."""
    found = _CHAINED.match(question.strip())
    return (found[1], found[2]) if found else None


def question_from_turns(turns: Sequence[Turn]) -> str:
    return conversation_of(turns).question
