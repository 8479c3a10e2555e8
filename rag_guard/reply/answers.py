"""What the user gets: the decision, the answer or message, the sources, the verdict and timings.

Pydantic models, so they serialise to JSON as they are. `GuardedRAG` returns them; `GuardMiddleware` puts one
in the agent's final message's metadata.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field, computed_field

from rag_guard.judging import Decision, ErrorInfo, Verdict
from rag_guard.reply.checks import AnswerCheck


class Timings(BaseModel):
    """Wall-clock seconds per stage; a stage that did not run stays None."""

    rewrite_s: float | None = None
    """A follow-up's rewrite into a standalone question (0 when none was needed)."""
    retrieval_s: float | None = None
    guard_s: float | None = None
    generation_s: float | None = None
    """The answer or clarifying message (and, with the answer check, the check and any message after it)."""
    total_s: float | None = None


class Source(BaseModel):
    """A retrieved chunk, as cited in answers: `[n]` in the text refers to `label` n."""

    label: int
    source: str
    chunk_index: int | None = None
    page: int | None = None
    """The page it starts on, in a PDF."""
    heading: str | None = None
    """The heading it sits under (Markdown, HTML, Word)."""
    score: float | None = None
    text: str

    @property
    def citation(self) -> str:
        """Where a reader finds it: `report.pdf, p. 12 — "Safety margins"`."""
        where = self.source + (f", p. {self.page}" if self.page is not None else "")
        return where + (f' \u2014 "{self.heading}"' if self.heading else "")


class GuardedAnswer(BaseModel):
    """One question's outcome: an answer from the context, a clarifying question, or a refusal."""

    question: str
    decision: Decision
    answer: str | None = None
    """Set only when decision is `answer`."""
    message: str | None = None
    """The clarifying question or the refusal, when the pipeline did not answer."""
    p_sufficient: float | None
    sources: list[Source] = Field(default_factory=list)
    verdict: Verdict
    cited: list[int] = Field(default_factory=list)
    """Labels of the sources the answer cites as [n], in order of first citation."""
    reason: str = ""
    """Why the user got this decision: the verdict's reason, and what the answer check said when it withheld
    the answer."""
    answer_check: AnswerCheck | None = None
    """What the checks said of the answer the gate let through (the grounding check, and the model's with
    `guard.verify_answer`); a failed check means the user got what the passages say, a clarifying message or,
    without a probability, the refusal, instead of the answer."""
    asked: str | None = None
    """What the user typed, when the question judged (`question`) is its standalone rewrite: a follow-up read
    in the conversation ("Read as: When did the Vasa sink?")."""
    timings: Timings = Field(default_factory=Timings)
    written: BaseMessage | None = Field(None, exclude=True, repr=False)
    """The writer's reply when it wrote the answer, with its logprobs when they were asked for (`rag-guard eval`
    scores how sure it was); never serialised."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error(self) -> ErrorInfo | None:
        """What failed when nothing could be judged (an outage, not a finding about the documents): the
        decision is then `refuse` and `message` says what failed and how to fix it."""
        return self.verdict.error


class GuardedAnswerChunk(BaseModel):
    """A piece of a streamed `GuardedAnswer`: the first carries the verdict, later ones add text.

    Chunks add up with `+` (as LangChain message chunks do), so `sum` of a stream is the full result.
    """

    question: str | None = None
    decision: Decision | None = None
    p_sufficient: float | None = None
    sources: list[Source] | None = None
    verdict: Verdict | None = None
    answer: str | None = None
    """Answer text added by this chunk."""
    message: str | None = None
    """Clarifying question or refusal text added by this chunk."""
    reason: str | None = None
    answer_check: AnswerCheck | None = None
    asked: str | None = None
    timings: Timings | None = None
    """The stages' times, in the last chunk (generation ends with the stream)."""
    written: BaseMessage | None = Field(None, exclude=True, repr=False)

    def __add__(self, other: GuardedAnswerChunk) -> GuardedAnswerChunk:
        def join(a: str | None, b: str | None) -> str | None:
            return None if a is None and b is None else (a or "") + (b or "")

        return GuardedAnswerChunk(
            question=self.question or other.question,
            decision=self.decision or other.decision,
            p_sufficient=self.p_sufficient if self.verdict is not None else other.p_sufficient,
            sources=self.sources if self.sources is not None else other.sources,
            verdict=self.verdict or other.verdict,
            answer=join(self.answer, other.answer),
            message=join(self.message, other.message),
            reason=self.reason or other.reason,
            answer_check=self.answer_check or other.answer_check,
            asked=self.asked or other.asked,
            timings=other.timings or self.timings,
            written=self.written or other.written,
        )

    def to_answer(self) -> GuardedAnswer:
        if self.verdict is None or self.decision is None or self.question is None:
            raise ValueError("the stream ended before the guard's verdict arrived")
        answer = self.answer.strip() if self.answer is not None else None
        return GuardedAnswer(
            question=self.question,
            decision=self.decision,
            answer=answer,
            message=self.message.strip() if self.message is not None else None,
            p_sufficient=self.p_sufficient,
            sources=self.sources or [],
            cited=citations(answer or "", len(self.sources or [])),
            verdict=self.verdict,
            reason=self.reason or self.verdict.reason,
            answer_check=self.answer_check,
            asked=self.asked,
            timings=self.timings or Timings(),
            written=self.written,
        )


def sources_of(documents: list[Document]) -> list[Source]:
    """The passages as the reply cites them: `[n]` names the n-th."""
    return [
        Source(
            label=label,
            source=str(doc.metadata.get("source", "unknown")),
            chunk_index=doc.metadata.get("chunk_index"),
            page=doc.metadata.get("page"),
            heading=doc.metadata.get("heading"),
            score=doc.metadata.get("score"),
            text=doc.page_content,
        )
        for label, doc in enumerate(documents, start=1)
    ]


def merge_chunks(chunks: Iterable[GuardedAnswerChunk]) -> GuardedAnswer:
    """The whole answer a stream of chunks adds up to."""
    merged: GuardedAnswerChunk | None = None
    for chunk in chunks:
        merged = chunk if merged is None else merged + chunk
    if merged is None:
        raise ValueError("the stream produced no chunk")
    return merged.to_answer()


def citations(text: str, n_sources: int) -> list[int]:
    """The [n] labels in `text` that name one of the `n_sources` passages, first occurrence order."""
    labels = (int(m) for m in re.findall(r"\[(\d{1,3})\]", text))
    return list(dict.fromkeys(label for label in labels if 1 <= label <= n_sources))
