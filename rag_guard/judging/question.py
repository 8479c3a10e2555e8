"""The question as every entry point accepts it: UTF-8 text, stripped, not empty, not too long.

Each way in (the CLI, the server, the agent middleware, `GuardedRAG`, `SufficiencyGuard`) cleans what it is
given; the result is a `Question`, which the steps after it pass on and no later entry cleans again.
"""

from __future__ import annotations

from typing import Any

from rag_guard.errors import InvalidQuestionError

MAX_QUESTION_CHARS = 4000


class Question(str):
    """A question `clean_question` has accepted."""

    __slots__ = ()


def clean_question(question: Any) -> Question:
    """The question stripped; `InvalidQuestionError` when it is not usable text. A `Question` is returned as it
    is: it was cleaned where it came in."""
    if isinstance(question, Question):
        return question
    if isinstance(question, bytes):
        try:
            question = question.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidQuestionError("The question is not valid UTF-8 text.") from None
    if not isinstance(question, str):
        raise InvalidQuestionError(f"The question must be text, not {type(question).__name__}.")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from the command line arrive as lone surrogates
        raise InvalidQuestionError("The question is not valid UTF-8 text; check the terminal's encoding.") from None
    question = question.strip()
    if not question:
        raise InvalidQuestionError("The question is empty: ask something about the documents.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(
            f"The question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}."
        )
    return Question(question)
