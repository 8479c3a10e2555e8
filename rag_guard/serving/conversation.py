"""A chat history → the question to retrieve for and judge. Pure, so the follow-up rule is pinned by fast tests.

OpenAI-style clients send the whole conversation on every request and the server keeps no state, so a reply
to the guard's clarifying question is recognised from the history itself: the turn before it is an
assistant message that asks a question (ends with "?"). Its answer is then joined to the question it
clarifies, so retrieval and the guard see both ("When did it launch? (Voyager 2)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag_guard.errors import InvalidQuestionError


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


def is_clarifying_question(text: str) -> bool:
    return text.rstrip().endswith("?")


def question_from_turns(turns: Sequence[Turn]) -> str:
    """The last user turn, with the earlier user turns it clarifies prepended in order.

    Walking back from the last user turn, each (assistant question, user turn) pair before it extends the
    chain; the chain stops at any other assistant turn (an answer, a refusal) or at the start.
    """
    dialogue = [turn for turn in turns if turn.role in ("user", "assistant")]
    if not dialogue or dialogue[-1].role != "user":
        raise InvalidQuestionError("The last message must be the user's question (role 'user').")
    chain = [dialogue[-1].content.strip()]
    i = len(dialogue) - 2
    while i >= 1 and dialogue[i].role == "assistant" and is_clarifying_question(dialogue[i].content):
        if dialogue[i - 1].role != "user":
            break
        chain.append(dialogue[i - 1].content.strip())
        i -= 2
    original, *replies = reversed(chain)
    return original if not replies else f"{original} ({'; '.join(r for r in replies if r)})"
