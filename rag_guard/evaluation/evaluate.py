"""`rag-guard eval`: the guard over a labelled question set, in a store of its own, measured.

The corpus goes into a temporary collection (a temporary directory, or a throw-away collection on a Chroma
server), so evaluating never touches the demo store. By default only the guard runs (the gate's figures);
with `answers` the reply each verdict calls for is generated too, as the pipeline would (the answer or the
clarifying message), and scored against the question's gold `answer` and `missing` part.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import BaseModel, Field, ValidationError

from rag_guard.config import Settings
from rag_guard.evaluation.answer_scoring import AnswerQuality, ScoredText, answer_quality, names, score_answer
from rag_guard.evaluation.metrics import GateQuality, gate_quality, stratified_sample
from rag_guard.evaluation.questions import LabelledQuestion
from rag_guard.judging import SufficiencyGuard
from rag_guard.judging.decision import Decision
from rag_guard.judging.logprobs import LogprobError, joint_logprob, min_content_probability, parse_logprobs, perplexity
from rag_guard.judging.signals import Signals
from rag_guard.judging.verdict import Verdict
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.answers import GuardedAnswer
from rag_guard.text.words import states

Progress = Callable[[int, int], None]
OnJudged = Callable[[list[LabelledQuestion], list["EvalRow"]], None]
DocumentsFor = Callable[[LabelledQuestion], Awaitable[list[Document]]]


class AnswerToken(BaseModel):
    token: str
    logprob: float


class EvalRow(BaseModel):
    question: str
    answerable: bool
    kind: str | None
    decision: Decision
    """The gate's decision, which the metrics score."""
    replied: Decision | None = None
    """With `answers`: the decision the user got after the reply's rules (a withheld answer is clarified; a
    question no retrieved sentence touches is refused)."""
    p_sufficient: float | None
    signals: Signals | None = None
    """What p_sufficient was made of (`rag-guard calibrate` fits on these)."""
    parts: dict[str, float] = Field(default_factory=dict)
    """For a question that asks several things, each part's own P(True) (`judging/parts.py`)."""
    reason: str
    guard_s: float | None
    sources: list[str]
    chunks: list[int | None] = Field(default_factory=list)
    """Each source's chunk number within its file (`metadata["chunk_index"]`), None for given context."""
    answer: str | None = None
    """With `answers`: the answer generated for an answered question, and its own confidence below."""
    message: str | None = None
    """With `answers`: the clarifying message generated for a clarified question."""
    scored: ScoredText | None = None
    """With `answers`: how the answer or message scored against the question's labels."""
    answer_tokens: list[AnswerToken] | None = None
    joint_logprob: float | None = None
    perplexity: float | None = None
    min_token_p: float | None = None
    """The lowest probability among the answer's tokens that hold a letter or digit."""
    draft: str | None = None
    """With `answers`: the answer as drafted, also when the grounding check withheld it."""
    unsupported: list[str] = Field(default_factory=list)
    """The draft's numbers, names and quoted phrases its passages lack."""
    p_supported: float | None = None
    """With `guard.verify_answer`: the model's check of the draft, P(it answers from the passages)."""
    group: str | None = None
    """The question's article or paragraph (from the file, else the best retrieved passage's source)."""
    hidden_states: dict[str, dict[int, list[float]]] | None = Field(None, exclude=True, repr=False)
    """With `read_layers`: the judge's states by call, for `rag-guard fit-probe --features`."""


class EvalReport(GateQuality, AnswerQuality):
    """The gate's figures on one labelled set, its latency, and every question's verdict; with `answers`, the
    figures of what passed it (the answer-quality fields stay empty otherwise)."""

    guard_latency_s_mean: float | None
    guard_latency_s_p95: float | None
    rows: list[EvalRow]


@contextmanager
def temporary_retriever(settings: Settings, corpus_dir: Path) -> Iterator[BaseRetriever]:
    """The corpus ingested into a store that disappears afterwards."""
    from rag_guard.factory import build_retriever, open_configured_store
    from rag_guard.store import chroma_client, ingest
    from rag_guard.store.chroma import collection_names

    with tempfile.TemporaryDirectory(prefix="rag_guard_eval_") as tmp:
        update: dict[str, object] = {"persist_directory": Path(tmp) / "chroma"}
        if settings.chroma.mode == "http":
            update["collection"] = f"rag_guard_eval_{uuid.uuid4().hex[:12]}"
        chroma = settings.chroma.model_copy(update=update)
        store = open_configured_store(settings, chroma, create=True)
        try:
            ingest(store, corpus_dir, chroma)
            yield build_retriever(chroma, store)
        finally:
            client = chroma_client(chroma) if chroma.mode == "http" else None
            if client is not None and chroma.collection in collection_names(client):  # ingest may have removed it
                client.delete_collection(chroma.collection)


class Judged(BaseModel):
    """One question's verdict, the sources it was judged on and, when asked for, what the user got."""

    verdict: Verdict
    sources: list[str]
    reply: GuardedAnswer | None = None
    """What the pipeline gave the user for this verdict: the answer, the clarifying message or the refusal;
    its `written` is the answer as the answerer returned it, with its logprobs, when one was written."""

    @property
    def draft(self) -> str | None:
        """The answer as the pipeline drafted it, also when a check withheld it."""
        if self.reply is None:
            return None
        check = self.reply.answer_check
        return self.reply.answer or (check.draft if check is not None else None)


def given_or_retrieved(retriever: BaseRetriever | None) -> DocumentsFor:
    """The question's own `context` when it has one, else what the retriever finds, without the chunks that
    state its `withhold` answer."""

    async def documents_for(question: LabelledQuestion) -> list[Document]:
        if question.context is not None:
            source = question.group or "context"
            return [Document(page_content=question.context, metadata={"source": source})]
        if retriever is None:
            raise ValueError(f"question {question.question!r} has no context and no corpus was given")
        if (answer := question.withhold) is None:
            return await retriever.ainvoke(question.question)

        def stated(doc: Document) -> bool:
            return states(doc.page_content, answer)

        found = await retriever.ainvoke(question.question, leave_out=stated)
        return [doc for doc in found if not stated(doc)]  # a retriever that ignores `leave_out` shows fewer

    return documents_for


async def judge_all(
    guard: SufficiencyGuard,
    documents_for: DocumentsFor,
    questions: list[LabelledQuestion],
    concurrency: int,
    progress: Progress | None = None,
    pipeline: GuardedRAG | None = None,
) -> list[Judged]:
    """Each question judged, `concurrency` at a time; with `pipeline`, the whole question goes through it
    instead (its guard, the reply its verdict calls for, the checks), on the question's documents."""
    slots = asyncio.Semaphore(concurrency)
    done = 0

    async def one(question: LabelledQuestion) -> Judged:
        nonlocal done
        async with slots:
            documents = await documents_for(question)
            if pipeline is None:
                verdict = await guard.ainvoke({"question": question.question, "documents": documents})
                judged = Judged(verdict=verdict, sources=_sources(verdict))
            else:
                on = pipeline.model_copy(update={"retriever": _Given(documents=documents)})
                reply = await on.ainvoke(question.question)
                judged = Judged(verdict=reply.verdict, sources=_sources(reply.verdict), reply=reply)
        done += 1
        if progress:
            progress(done, len(questions))
        return judged

    return list(await asyncio.gather(*(one(q) for q in questions)))


def _sources(verdict: Verdict) -> list[str]:
    return [str(doc.metadata.get("source", "unknown")) for doc in verdict.documents]


class _Given(BaseRetriever):
    """The documents a question is judged on, handed to the pipeline as its retriever."""

    documents: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return list(self.documents)


SAVE_EVERY = 10
"""Questions judged between two saves (of a checkpoint, or of the states `on_judged` keeps): what an interrupted
reading can lose."""


def evaluate(
    settings: Settings,
    corpus_dir: Path | None,
    questions: list[LabelledQuestion],
    limit: int | None = None,
    progress: Progress | None = None,
    answers: bool = False,
    read_layers: tuple[int, ...] = (),
    checkpoint: Path | None = None,
    on_judged: OnJudged | None = None,
    collection: BaseRetriever | None = None,
) -> EvalReport:
    """One labelled set judged (`Evaluator.evaluate`); `limit` samples it, stratified by label. Without
    `corpus_dir`, questions are judged on `collection`."""
    if limit is not None:
        questions = stratified_sample(questions, [q.answerable for q in questions], limit)
    with Evaluator(settings, answers=answers, read_layers=read_layers, collection=collection) as evaluator:
        return evaluator.evaluate(corpus_dir, questions, progress, checkpoint, on_judged)


class Evaluator:
    """What judging labelled sets needs, each built once however many sets it judges (`eval-suite` judges
    thirteen articles of one corpus): the models, guard and pipeline when the first question is judged, and
    one temporary store per corpus, removed on leaving the `with` block."""

    def __init__(
        self,
        settings: Settings,
        *,
        answers: bool = False,
        read_layers: tuple[int, ...] = (),
        collection: BaseRetriever | None = None,
    ) -> None:
        self.settings = settings
        self.answers = answers
        """Also write the reply each verdict calls for, through the pipeline."""
        self.read_layers = read_layers
        """The embedded judge's layers whose states each row keeps (`EvalRow.hidden_states`)."""
        self.collection = collection
        """What questions without a context are judged on when no corpus is given (a user's collection)."""
        self._stores = ExitStack()
        self._retrievers: dict[Path, BaseRetriever] = {}
        self._pipeline: GuardedRAG | None = None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stores.close()

    def evaluate(
        self,
        corpus_dir: Path | None,
        questions: list[LabelledQuestion],
        progress: Progress | None = None,
        checkpoint: Path | None = None,
        on_judged: OnJudged | None = None,
    ) -> EvalReport:
        """The set's figures and rows. `checkpoint`: a JSON Lines file that keeps each row as it is judged
        (states aside), so a reading stopped part way goes on from where it stopped; rows already in it are not
        judged again. `on_judged(questions, rows)` gets each batch as it is judged, states included.

        A question that carries its own `context` is judged against it; the others against the corpus (none
        needed when every question carries one)."""
        rows = read_checkpoint(checkpoint, questions) if checkpoint is not None else {}
        todo = [i for i in range(len(questions)) if i not in rows]
        pipeline = self.pipeline
        if todo:
            from rag_guard.factory import load_models

            load_models(pipeline.guard.judge)
            answering = pipeline if self.answers else None
            documents_for = given_or_retrieved(self._retriever(corpus_dir))
            step = SAVE_EVERY if checkpoint is not None or on_judged is not None else len(todo)
            for start in range(0, len(todo), step):
                part = todo[start : start + step]
                done = len(questions) - len(todo) + start
                counted = (lambda n, _, done=done: progress(done + n, len(questions))) if progress else None
                judged = asyncio.run(
                    judge_all(
                        pipeline.guard,
                        documents_for,
                        [questions[i] for i in part],
                        pipeline.max_concurrency or 1,
                        counted,
                        answering,
                    )
                )
                fresh = {i: _row(questions[i], j) for i, j in zip(part, judged, strict=True)}
                rows.update(fresh)
                if on_judged is not None:
                    on_judged([questions[i] for i in part], list(fresh.values()))
                if checkpoint is not None:
                    _save(checkpoint, fresh)
        return summarise(questions, [rows[i] for i in range(len(questions))], pipeline.guard)

    @property
    def pipeline(self) -> GuardedRAG:
        """The pipeline as config.yaml describes it (`GuardedRAG.from_config`), built on first use: its guard
        judges, and with `answers` the whole question goes through it, the answer's logprobs recorded."""
        if self._pipeline is None:
            self._pipeline = GuardedRAG.from_config(
                self.settings,
                retriever=_Given(documents=[]),
                guard_fields={"read_layers": self.read_layers},
                reply_fields={"answer_options": {"logprobs": True}},
            )
        return self._pipeline

    def _retriever(self, corpus_dir: Path | None) -> BaseRetriever | None:
        if corpus_dir is None:
            return self.collection
        if corpus_dir not in self._retrievers:
            self._retrievers[corpus_dir] = self._stores.enter_context(temporary_retriever(self.settings, corpus_dir))
        return self._retrievers[corpus_dir]


def read_checkpoint(path: Path, questions: list[LabelledQuestion]) -> dict[int, EvalRow]:
    """The rows a checkpoint holds for these questions, by position; a row whose question is not the one at
    its position (the list changed) is not used, and a line cut short by an interruption is skipped."""
    if not path.is_file():
        return {}
    rows: dict[int, EvalRow] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            saved = _Saved.model_validate_json(line)
        except ValidationError:
            continue
        if saved.index < len(questions) and saved.row.question == questions[saved.index].question:
            rows[saved.index] = saved.row
    return rows


class _Saved(BaseModel):
    index: int
    row: EvalRow


def _save(path: Path, rows: dict[int, EvalRow]) -> None:
    """Append the rows, on a line of their own even after a line an interruption cut short."""
    cut_short = False
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as saved:
            saved.seek(-1, 2)
            cut_short = saved.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as file:
        file.write("\n" if cut_short else "")
        file.writelines(_Saved(index=i, row=row).model_dump_json() + "\n" for i, row in rows.items())


def report(questions: list[LabelledQuestion], judged: list[Judged], guard: SufficiencyGuard) -> EvalReport:
    return summarise(questions, [_row(q, j) for q, j in zip(questions, judged, strict=True)], guard)


def summarise(questions: list[LabelledQuestion], rows: list[EvalRow], guard: SufficiencyGuard) -> EvalReport:
    """The gate's and the replies' figures over one row per question, at the thresholds of the guard that
    judged them."""
    quality = gate_quality(
        [row.p_sufficient for row in rows],
        [q.answerable for q in questions],
        [row.decision for row in rows],
        guard.answer_threshold,
        guard.clarify_threshold,
    )
    latencies = [row.guard_s for row in rows if row.guard_s is not None]
    replies = answer_quality(
        [row.scored for row in rows if row.scored is not None], sum(q.answerable for q in questions)
    )
    return EvalReport(
        **quality.model_dump(),
        **replies.model_dump(),
        guard_latency_s_mean=float(np.mean(latencies)) if latencies else None,
        guard_latency_s_p95=float(np.percentile(latencies, 95)) if latencies else None,
        rows=rows,
    )


def _chunk_number(index: object) -> int | None:
    return int(index) if isinstance(index, int | float) else None


def _row(question: LabelledQuestion, judged: Judged) -> EvalRow:
    verdict = judged.verdict
    row = EvalRow(
        question=question.question,
        answerable=question.answerable,
        kind=question.kind,
        decision=verdict.decision,
        p_sufficient=verdict.p_sufficient,
        signals=verdict.signals,
        parts=verdict.parts,
        reason=verdict.reason,
        guard_s=verdict.guard_s,
        sources=judged.sources,
        chunks=[_chunk_number(doc.metadata.get("chunk_index")) for doc in verdict.documents],
        group=question.group or (judged.sources[0] if judged.sources else None),
        hidden_states=verdict.hidden_states,
    )
    reply, draft = judged.reply, judged.draft
    row.replied = reply.decision if reply is not None else None
    if reply is None or (draft is None and reply.decision is Decision.REFUSE):
        return row
    if draft is None:  # the clarifying message
        row.message = (reply.message or "").strip()
        if question.missing is not None:
            row.scored = ScoredText(names_missing=names(row.message, question.missing))
        return row
    check = reply.answer_check
    draft = draft.strip()
    withheld = reply.answer is None
    row.answer, row.message = (None, (reply.message or "").strip()) if withheld else (draft, None)
    row.draft, row.unsupported = draft, check.unsupported if check else []
    row.p_supported = check.p_supported if check else None
    row.scored = score_answer(draft, question.answerable, question.answer).model_copy(
        update={"unsupported": bool(row.unsupported), "withheld": withheld}
    )
    if check is not None and check.min_token_p is not None:  # a quoted span: its own tokens
        row.min_token_p, row.joint_logprob = check.min_token_p, check.joint_logprob
        return row
    try:
        written = reply.written
        tokens = parse_logprobs(written.response_metadata.get("logprobs") if written is not None else None)
    except LogprobError:
        return row  # a server that gives no logprobs for answers: the text alone
    row.answer_tokens = [AnswerToken(token=t.token, logprob=t.logprob) for t in tokens]
    row.joint_logprob = joint_logprob(tokens)
    row.perplexity = perplexity(tokens)
    row.min_token_p = min_content_probability(tokens)
    return row
