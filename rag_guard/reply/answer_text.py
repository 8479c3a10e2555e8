"""The answer as the user reads it: without the question echoed back or source notes pasted in. Pure.

The passages reach the model as "[1] (source: file)"; a small model sometimes copies that note, the
question line, or the instruction's "[n]" itself into its answer. Citations stay as `[1]`, `[2]`. And it
sometimes answers with the question's own words ("Korea border Kublai's territory. [2]" for "Where did
Korea border Kublai's territory?"): that answers nothing, and `restates_question` says so.
"""

from __future__ import annotations

import re

from rag_guard.reply.quote import echoes
from rag_guard.text.words import QUESTION_WORD, without_citations

_SOURCE_NOTE = re.compile(r"\s*\((?:sources?|from)\s*:[^)\n]*\)", re.IGNORECASE)
_QUESTION_LINE = re.compile(r"^\s*question\s*:.*$\n?", re.IGNORECASE | re.MULTILINE)
_PLACEHOLDER = re.compile(r"\s*\[(?:n|context|source|citation)\]", re.IGNORECASE)
_CITATIONS = re.compile(r"^\s*((?:\[\d+\]\s*)+)")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_FOLD = re.compile(r"[\W_]+")
_ASKS_FOR_NEW = re.compile(rf"^\W*{QUESTION_WORD}", re.IGNORECASE)
_OFFERS_CHOICE = re.compile(r"\bor\b", re.IGNORECASE)


def tidy_answer(answer: str, question: str) -> str:
    """`answer` without pasted source notes, placeholder citations ("[n]", "[context]"), a "Question:" line,
    or the question repeated at its start (a citation that followed the repeat moves to the end of the
    answer's first sentence)."""
    text = _QUESTION_LINE.sub("", _PLACEHOLDER.sub("", _SOURCE_NOTE.sub("", answer))).strip()
    rest = _without_leading(text, question)
    if rest is None:
        return text
    cited = _CITATIONS.match(rest)
    if not cited:
        return rest
    body, marks = rest[cited.end() :], " ".join(cited[1].split())
    end = _SENTENCE_END.search(body)
    return f"{body[: end.start()]} {marks}{body[end.start() :]}" if end else f"{body} {marks}"


def _without_leading(text: str, question: str) -> str | None:
    """`text` after `question` when it starts with it (case, spaces and punctuation aside); else None."""
    wanted = _FOLD.sub("", question.lower())
    if not wanted:
        return None
    seen = ""
    for index, char in enumerate(text):
        seen += _FOLD.sub("", char.lower())
        if seen == wanted:
            rest = text[index + 1 :].lstrip(" ?.:!-\n")
            return rest or None
        if not wanted.startswith(seen):
            return None
    return None


def restates_question(answer: str, question: str) -> bool:
    """The answer only restates the question: every content word of it is one of the question's.

    Only for a question that asks for something it does not name (a "wh" question without "or"): "The
    Normans were Christian" answers "Were the Normans Christian?", and "Rollo" answers "Was it Rollo or
    Richard?", with the question's words alone."""
    if not _ASKS_FOR_NEW.match(question) or _OFFERS_CHOICE.search(question):
        return False
    return echoes(without_citations(answer), question)


class VerdictLead:
    """Drops a leading verdict word ("True", "False.") and the blanks after it from streamed text.

    In single-pass mode the answer follows its verdict token, and an answer or question generated after
    the single-pass prompt tends to begin by repeating the verdict.
    """

    _LEAD = re.compile(r"^\s*(?:(?:true|false)\b)?[\s.:,;!-]*", re.IGNORECASE)
    _PARTIAL = re.compile(r"t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?", re.IGNORECASE)

    def __init__(self) -> None:
        self._held = ""
        self._done = False

    def feed(self, text: str) -> str:
        """Text to emit now; held back while it could still be a verdict word or the blanks after one."""
        if self._done:
            return text
        self._held += text
        if not self._LEAD.sub("", self._held, count=1) or self._PARTIAL.fullmatch(self._held.strip()):
            return ""
        return self.flush()

    def flush(self) -> str:
        if self._done:
            return ""
        self._done = True
        return self._LEAD.sub("", self._held, count=1)
