"""`rag-guard eval --conversations`: labelled multi-turn conversations, each follow-up against its standalone
question.

A conversation is a JSON line of 2-4 turns; each turn is what the user types and, for a follow-up, the
standalone question it stands for (`standalone`), or `null` when it could mean several things (then the
guard should ask which). Each turn goes through the pipeline with the turns before it, as the server and
`rag-guard chat` send them (a clarifying reply marked as the guard's); each labelled standalone question goes
through alone. A follow-up is read right when the decision the user gets equals its standalone question's.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from rag_guard.conversation.turns import Turn, conversation_of, mark_clarifying
from rag_guard.errors import ConfigError
from rag_guard.judging import Decision, clean_question
from rag_guard.pipeline import GuardedRAG

TurnKind = Literal["first", "pronoun", "ellipsis", "clarification_reply", "topic_switch", "ambiguous"]


class LabelledTurn(BaseModel):
    question: str
    """What the user types."""
    standalone: str | None = None
    """The question a follow-up stands for; None for a first turn (it is its own) or an ambiguous one."""
    answerable: bool | None = None
    """Whether the documents answer the standalone question (for a first turn, the question itself)."""
    kind: TurnKind


class LabelledConversation(BaseModel):
    name: str
    turns: list[LabelledTurn] = Field(min_length=2, max_length=4)


class TurnResult(BaseModel):
    conversation: str
    turn: int
    kind: TurnKind
    typed: str
    judged: str
    """The question the pipeline judged (a follow-up's rewrite)."""
    decision: Decision
    p_sufficient: float | None
    standalone_decision: Decision | None = None
    agrees: bool | None = None
    """A follow-up: the same decision as its standalone question; an ambiguous one: a question back."""
    rewrite_s: float


class ConversationReport(BaseModel):
    conversations: int
    follow_ups: int
    agreement: float
    """Share of the labelled follow-ups (not ambiguous) whose decision equals their standalone question's."""
    unanswerable_answered: int
    """Follow-ups whose standalone question the documents do not answer, answered anyway."""
    ambiguous: int
    ambiguous_asked: int
    """Ambiguous follow-ups that got a question back."""
    rewrite_s_follow_up: float | None
    """Mean seconds the rewrite added to a follow-up."""
    rewrite_s_first_turn: float | None
    rows: list[TurnResult]


def load_conversations(path: Path) -> list[LabelledConversation]:
    """The file's conversations; a bad line is a `ConfigError` naming it and what is wrong."""
    if not path.is_file():
        raise ConfigError(f"Conversations file {path} not found: pass --conversations FILE (JSON Lines).")
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(LabelledConversation.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ConfigError(f"{path}, line {number}: not a labelled conversation ({exc})") from exc
    if not found:
        raise ConfigError(f"{path} holds no conversation: one JSON object a line, with `name` and `turns`.")
    return found


def evaluate_conversations(
    rag: GuardedRAG, conversations: list[LabelledConversation], progress: Callable[[int, int], None] | None = None
) -> ConversationReport:
    """Every turn through `rag` with the turns before it, every labelled standalone question alone."""
    standalone: dict[str, Decision] = {}
    rows: list[TurnResult] = []
    total = sum(len(c.turns) for c in conversations)
    for conversation in conversations:
        said: list[Turn] = []
        for index, turn in enumerate(conversation.turns):
            read = conversation_of([*said, Turn("user", turn.question)])
            asked = {"question": clean_question(read.question), "history": read.history, "chained": read.chained}
            result = rag.invoke(asked)
            reply = result.answer or result.message or ""
            said += [
                Turn("user", turn.question),
                Turn("assistant", mark_clarifying(reply) if result.decision is Decision.CLARIFY else reply),
            ]
            row = TurnResult(
                conversation=conversation.name,
                turn=index,
                kind=turn.kind,
                typed=turn.question,
                judged=result.question,
                decision=result.decision,
                p_sufficient=result.p_sufficient,
                rewrite_s=result.timings.rewrite_s or 0.0,
            )
            if turn.kind == "ambiguous":
                row.agrees = result.decision is Decision.CLARIFY and result.p_sufficient is None
            elif index > 0 and turn.standalone is not None:
                if turn.standalone not in standalone:
                    standalone[turn.standalone] = rag.invoke(turn.standalone).decision
                row.standalone_decision = standalone[turn.standalone]
                row.agrees = row.decision is row.standalone_decision
            rows.append(row)
            if progress is not None:
                progress(len(rows), total)
    return _report(conversations, rows)


def _report(conversations: list[LabelledConversation], rows: list[TurnResult]) -> ConversationReport:
    labelled = {(c.name, i): t for c in conversations for i, t in enumerate(c.turns)}
    follow_ups = [r for r in rows if r.turn > 0]
    scored = [r for r in follow_ups if r.kind != "ambiguous" and r.agrees is not None]
    ambiguous = [r for r in follow_ups if r.kind == "ambiguous"]
    unanswered = [
        r for r in scored if labelled[(r.conversation, r.turn)].answerable is False and r.decision is Decision.ANSWER
    ]
    return ConversationReport(
        conversations=len(conversations),
        follow_ups=len(follow_ups),
        agreement=sum(bool(r.agrees) for r in scored) / len(scored) if scored else 0.0,
        unanswerable_answered=len(unanswered),
        ambiguous=len(ambiguous),
        ambiguous_asked=sum(bool(r.agrees) for r in ambiguous),
        rewrite_s_follow_up=_mean([r.rewrite_s for r in follow_ups]),
        rewrite_s_first_turn=_mean([r.rewrite_s for r in rows if r.turn == 0]),
        rows=rows,
    )


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None
