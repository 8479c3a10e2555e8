"""A follow-up ("When did it sink?") rewritten into the question it stands for, from the turns before it. Pure.

Retrieval and the guard see one question, so a follow-up is first made standalone: one short call to the
writer ("When did the Vasa sink?"), none for a first turn. Two rules need no model: a follow-up that refers
to nothing and has content words of its own needs no rewrite ("Who commanded the Batavia?"), and one that
refers to a single thing ("it", "she") right after a question that named several is ambiguous: the guard
asks which is meant ("Which do you mean: the Vasa or the Mary Rose?") instead of guessing. A reply to the
guard's clarifying question is always rewritten with the question it narrows: to the parts it picks by
their words ("Just the guns, please."), with no model call, else by the writer. A reply that is no usable
question (empty, far longer than the follow-up, or an answer instead of a question) leaves the question as
typed, as does a failed call: never an answer without a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from rag_guard.conversation.turns import ASKS, CLARIFY_MARK, Turn, unchained
from rag_guard.judging.parts import question_parts, standalone_parts
from rag_guard.reply.grounding import named_items
from rag_guard.text.words import FUNCTION_WORDS, key_words, stems

MAX_HISTORY_TURNS = 6
"""Turns before the follow-up that the rewrite reads: the last three exchanges."""
MAX_TURN_CHARS = 400
REWRITE_TOKENS = 64
REWRITE_INSTRUCTION = (
    "Rewrite the last question so that it can be understood without the conversation: replace words like "
    '"it", "she", "he", "they" and "there" with what they refer to in the conversation, and fill in what a '
    'short question such as "and Voyager 1?" leaves out. When the last message replies to a question the '
    "assistant asked, rewrite the question it narrows. Keep the question's own words otherwise. Do not answer "
    "it: reply with the rewritten question only, on one line.\n\n"
    "Example 1.\nConversation:\nUser: Who wrote Hamlet?\nAssistant: William Shakespeare [1].\n\n"
    "Last question: When was he born?\n\nRewritten question: When was William Shakespeare born?\n\n"
    "Example 2.\nConversation:\nUser: What is the capital of Peru?\nAssistant: Lima [1].\n\n"
    "Last question: And of Chile?\n\nRewritten question: What is the capital of Chile?"
)
_REFERS = re.compile(
    r"\b(?:it|its|she|her|hers|he|him|his|they|them|their|there|that|this|those|these|the other|one)\b",
    re.IGNORECASE,
)
_ELLIPSIS = re.compile(r"^\W*(?:and|but|what about|how about|or)\b", re.IGNORECASE)
_SINGULAR = re.compile(r"\b(?:it|its|she|her|hers|he|him|his)\b", re.IGNORECASE)
_LEAD = re.compile(r"^\W*(?:standalone question|rewritten question|question)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Rewrite:
    """The question to judge, or the things an ambiguous follow-up could mean (then `question` is as typed)."""

    question: str
    options: list[str] = field(default_factory=list)
    rewritten: bool = False
    """The writer was asked (a follow-up that leans on earlier turns)."""

    @property
    def ambiguous(self) -> bool:
        return len(self.options) > 1

    def which(self) -> str:
        """The question back to the user for an ambiguous follow-up."""
        listed = ", ".join(self.options[:-1]) + f" or {self.options[-1]}"
        return f"Which do you mean: {listed}?"


def needs_rewrite(question: str, history: Sequence[Turn], *, chained: bool = False) -> bool:
    """A follow-up leans on earlier turns when it refers back ("it", "there"), is elliptic ("And Voyager
    1?", "How many guns?") or replies to a clarifying question (`chained`); a first turn never does."""
    if chained:
        return True
    if not any(turn.role == "user" for turn in history):
        return False
    content = [word for word in key_words(question) if word not in FUNCTION_WORDS]
    return bool(_REFERS.search(question) or _ELLIPSIS.match(question) or len(content) < 2)


def ambiguity(question: str, history: Sequence[Turn]) -> list[str]:
    """The things a follow-up could mean: when it refers to one thing ("it", "she") and names none, and the
    last question before it named several, those; else none."""
    if not _SINGULAR.search(question) or any(kind == "name" for kind, _ in named_items(question, question=True)):
        return []
    asked = [turn.content for turn in history if turn.role == "user"]
    if not asked:
        return []
    names = [item for kind, item in named_items(asked[-1], question=True) if kind == "name"]
    return names if len(names) > 1 else []


def narrowed(question: str) -> str | None:
    """A reply to a clarifying question that picks some of the parts a question asks ("Who commanded the
    Batavia, and how many guns did the Vasa carry? (Just the guns, please.)") as those parts, with no model
    call: the parts sharing the most words with the reply, when not all share as many. None when the reply
    picks no part (it names a thing instead: "the Vasa"), and the writer reads it."""
    split = unchained(question)
    if split is None:
        return None
    asked, reply = split
    shared = {part: len(stems(part) & stems(reply)) for part in question_parts(asked)}
    most = max(shared.values(), default=0)
    picked = [part for part, count in shared.items() if count == most]
    if not most or len(picked) == len(shared) or not set(picked) <= set(standalone_parts(asked)):
        return None  # no pick, all of it, or a part that refers back ("when did it sink?"): the writer's
    return " ".join(picked)


def rewrite_prompt(question: str, history: Sequence[Turn]) -> list[BaseMessage]:
    """The writer's prompt: the last turns, then the follow-up."""
    lines = []
    for turn in list(history)[-MAX_HISTORY_TURNS:]:
        text = " ".join(turn.content.replace(CLARIFY_MARK, "").split())
        if len(text) > MAX_TURN_CHARS:
            text = text[:MAX_TURN_CHARS].rsplit(" ", 1)[0] + " ..."
        lines.append(f"{'User' if turn.role == 'user' else 'Assistant'}: {text}")
    conversation = "\n".join(lines)
    return [
        SystemMessage(content=REWRITE_INSTRUCTION),
        HumanMessage(content=f"Conversation:\n{conversation}\n\nLast question: {question}\n\nRewritten question:"),
    ]


def read_rewrite(reply: str, question: str) -> Rewrite:
    """The writer's reply as the standalone question; the question as typed when the reply is no usable
    question (empty, more than three times as long and 200 characters longer, or not a question: a small model
    sometimes answers the follow-up instead of rewriting it)."""
    line = next((line for line in reply.strip().splitlines() if line.strip()), "")
    text = _LEAD.sub("", line).strip().strip("\"'\u201c\u201d").strip()
    if not text or len(text) > 3 * len(question) + 200 or not ASKS.match(text):
        return Rewrite(question=question, rewritten=True)  # no question: the model answered, or rambled
    if not text.endswith("?"):
        text = text.rstrip(".") + "?"
    return Rewrite(question=text, rewritten=True)


def same_question(a: str, b: str) -> bool:
    """Case, spacing and punctuation aside."""
    return re.sub(r"\W+", " ", a).strip().lower() == re.sub(r"\W+", " ", b).strip().lower()
