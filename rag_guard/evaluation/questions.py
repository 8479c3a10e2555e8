"""Labelled question files (JSON Lines): `{"question": str, "answerable": bool, "answer": str?}`.

`answer` may list several acceptable answers (any of them is right, as in SQuAD); `missing` names what the
passages lack for a partly covered question, which a clarifying message should name.

A line may also carry the passage it was written against (`context`, judged as given instead of retrieving)
and what it belongs to (`group`, or SQuAD's `article` and `paragraph_index`, or `paragraph`): fitting keeps a
group on one side of every cross-validation split.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from rag_guard.errors import CorpusError


class LabelledQuestion(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    question: str
    answerable: bool
    answer: str | list[str] | None = None
    missing: str | None = None
    """For a question the documents cover only in part: the part they do not state, in a few words."""
    kind: str | None = None
    """Optional grouping (answerable, partial, unanswerable, off_topic) used to pick demo questions."""
    context: str | None = None
    """The passage to judge the question against, instead of retrieving one (`rag-guard fit-probe`)."""
    withhold: str | None = None
    """An answer the retrieved passages must not state: every chunk that does is left out, so the question
    meets passages on its topic that leave it open (`calibrate --synthetic`'s near misses)."""

    @property
    def group(self) -> str | None:
        """The article or paragraph the question was written about, when the file says."""
        extra = self.model_extra or {}
        if extra.get("group") is not None:
            return str(extra["group"])
        if extra.get("article") is not None:
            return f"{extra['article']}#{extra.get('paragraph_index', '')}"
        if extra.get("paragraph") is not None:
            return str(extra["paragraph"])
        return None


def load_questions(path: Path) -> list[LabelledQuestion]:
    """Every line parsed and validated; errors name the file and line."""
    if not path.is_file():
        raise CorpusError(f"Questions file {path} not found.")
    questions: list[LabelledQuestion] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            questions.append(LabelledQuestion.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            first = str(exc).splitlines()[0] if isinstance(exc, json.JSONDecodeError) else _first_error(exc)
            raise CorpusError(
                f"{path}:{number}: not a labelled question ({first}). Each line must be a JSON object "
                'like {"question": "...", "answerable": true, "answer": "..."}.'
            ) from None
    if not questions:
        raise CorpusError(f"Questions file {path} holds no questions.")
    return questions


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


def representative(questions: list[LabelledQuestion], per_kind: int = 2) -> list[LabelledQuestion]:
    """A few questions of each kind, in file order: what `rag-guard demo` shows by default."""
    chosen: list[LabelledQuestion] = []
    counts: dict[str, int] = {}
    for q in questions:
        kind = q.kind or ("answerable" if q.answerable else "unanswerable")
        if counts.get(kind, 0) < per_kind:
            counts[kind] = counts.get(kind, 0) + 1
            chosen.append(q)
    return chosen
