"""The signal study: every candidate score for P(sufficient), per question, on one labelled set.

For each question the passages are retrieved once; then, on those same passages, the embedded model gives
each signal in an order that lets the cheap ones reuse the guard's cached prompt:

- `verdict`: the guard's one token (the baseline); `yes_no`: the same with Yes/No;
- `extract`: the probability of the first word of a short answer quoted from the passages (`unanswerable`
  excluded), one more token after the verdict;
- `missing`: "does the question ask for anything the passages do not state?" (for debiasing);
- `answer_mean_lp` / `answer_min_lp`: the drafted answer's own token logprobs;
- `verify`: one more True/False token after the drafted answer;
- `detail`: the unsupported detail named in a few words, then the verdict;
- `instruction_first`, `few_shot`: the verdict from the two prompt layouts that share no prefix;
- `best_similarity`, `mean_similarity`: the retriever's cosine similarities.

Each step's wall time is kept beside its value. Writes bench/results/signals-<preset>-<set>.json, with
numbers only (questions are named by a hash of their text, and generated text is dropped);
`bench/signal_table.py` turns those files into held-out AUROCs. Run:

    .venv/bin/python bench/signals.py --corpus corpora --questions corpora/questions.jsonl --preset default

`--only extract` measures the verdict and just the named signals; into an existing file's rows, `--add
extract` merges them (the verdict is compared with the stored one: the same passages must give the same
probability). `--rest-of 60` takes the questions the stratified sample of 60 leaves out: a held-out set for
a choice made on that sample.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage
from rich.progress import Progress

from rag_guard.config import load_config
from rag_guard.evaluation.evaluate import temporary_retriever
from rag_guard.evaluation.metrics import stratified_sample
from rag_guard.evaluation.questions import load_questions
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.logprobs import LogprobError, TokenLogprob, answer_start, p_true, parse_logprobs
from rag_guard.judging.prompts import (
    ABSTAIN_WORD,
    EXTRACT_INSTRUCTION,
    GUARD_INSTRUCTION,
    MISSING_INSTRUCTION,
    build_messages,
    follow_up,
)
from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.prompts import ANSWER_INSTRUCTION, VERIFY_INSTRUCTION

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
JUDGE = {"max_tokens": 1, "logprobs": True, "top_logprobs": 20}

# --- guard variants this study measures (docs/studies/signals.md has the figures) ---

GUARD_INSTRUCTION_YES_NO = GUARD_INSTRUCTION.replace("True", "Yes").replace("False", "No")

DETAIL_INSTRUCTION = (
    "Task: compare the question with the passages above, detail by detail. In a few words, name what the "
    'question asks for or assumes that the passages do not state, or write "nothing" if they state '
    "everything it needs."
)
DETAIL_VERDICT = (
    "So do the passages state the information needed to answer the question, exactly as asked?\n"
    "Reply with one word: True or False."
)
"""Detail-first: the model names the unsupported detail in a few generated words, then gives its verdict."""


def timed(call: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def p_of(reply: AIMessage, read: Callable[[TokenLogprob], float] = p_true) -> float | None:
    try:
        return read(parse_logprobs(reply.response_metadata.get("logprobs"))[0])
    except LogprobError:
        return None


def extract_of(position: TokenLogprob) -> float:
    return answer_start(position, ABSTAIN_WORD)


ALONE = ("extract",)
"""Signals `--only` and `--add` can measure beside the verdict: those that need nothing generated first."""


def signals_for(
    model: ChatLlamaCpp,
    guard: SufficiencyGuard,
    question: str,
    documents: list[Any],
    layouts: bool = True,
    only: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Every signal for one question; with `only`, the verdict and just those signals."""
    docs = guard.fit(question, documents)
    out: dict[str, Any] = {"passages": len(docs)}
    scores = [float(d.metadata["score"]) for d in docs] or [0.0]
    out["best_similarity"], out["mean_similarity"] = max(scores), statistics.fmean(scores)

    def judge(
        name: str,
        messages: list[BaseMessage],
        read: Callable[[TokenLogprob], float] = p_true,
        branch: str | None = None,
    ) -> None:
        """One token; `branch`: the instruction the prompt ends with, where the guard forks (`ChatLlamaCpp`)."""
        options = {**JUDGE, "branch": branch} if branch else JUDGE
        reply, seconds = timed(lambda: model.invoke(messages, **options))
        out[name], out[f"{name}_s"] = p_of(reply, read), seconds

    def one_token(name: str, instruction: str, read: Callable[[TokenLogprob], float] = p_true) -> None:
        """A one-token question on the shared passages, forked where its instruction begins, as the guard asks."""
        judge(name, build_messages(question, docs, instruction), read, branch=instruction)

    model.forget_prompt()  # the baseline from a cold cache, as a new question meets it
    base = build_messages(question, docs, GUARD_INSTRUCTION)
    one_token("verdict", GUARD_INSTRUCTION)
    one_token("extract", EXTRACT_INSTRUCTION, extract_of)
    if only is not None:
        return out
    one_token("yes_no", GUARD_INSTRUCTION_YES_NO)
    one_token("missing", MISSING_INSTRUCTION)

    drafting = follow_up(base, "True", ANSWER_INSTRUCTION)
    answer, out["answer_s"] = timed(lambda: model.invoke(drafting, max_tokens=160, logprobs=True))
    out["answer"] = answer.text.strip()
    try:
        lps = [t.logprob for t in parse_logprobs(answer.response_metadata.get("logprobs"))]
    except LogprobError:
        lps = []
    out["answer_tokens"] = len(lps)
    out["answer_mean_lp"] = statistics.fmean(lps) if lps else None
    out["answer_min_lp"] = min(lps) if lps else None
    judge("verify", follow_up(drafting, answer.text, VERIFY_INSTRUCTION))

    naming = build_messages(question, docs, DETAIL_INSTRUCTION)
    detail, out["detail_text_s"] = timed(lambda: model.invoke(naming, max_tokens=40))
    out["detail_text"] = detail.text.strip()
    judge("detail", follow_up(naming, detail.text, DETAIL_VERDICT))

    if not layouts:
        return out
    judge("instruction_first", build_messages(question, docs, GUARD_INSTRUCTION, instruction_first=True))
    judge("few_shot", build_messages(question, docs, GUARD_INSTRUCTION, few_shot=True), branch=GUARD_INSTRUCTION)
    return out


def question_id(question: str) -> str:
    """Rows name questions by a hash: a public set's text must not be copied into the repository."""
    return hashlib.sha1(question.encode("utf-8")).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--preset", choices=["default", "small"], default="default")
    parser.add_argument("--limit", type=int, default=None, help="a stratified sample of this many questions")
    parser.add_argument("--name", required=True, help="the set's name in the output file")
    parser.add_argument("--no-layouts", action="store_true", help="skip the two variants that share no prefix")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--rest-of", type=int, default=None, help="the questions a --limit of this many leaves out")
    parser.add_argument("--only", nargs="+", choices=ALONE, help="measure the verdict and only these signals")
    parser.add_argument("--add", nargs="+", choices=ALONE, help="measure these into the existing file")
    args = parser.parse_args()
    target = args.out / f"signals-{args.preset}-{args.name}.json"
    stored = {row["id"]: row for row in json.loads(target.read_text())["rows"]} if args.add else {}
    only = args.add or args.only

    settings = load_config(ROOT / "config.yaml")
    settings = settings.model_copy(update={"model": settings.model.model_copy(update={"preset": args.preset})})
    questions = load_questions(args.questions)
    if args.limit:
        questions = stratified_sample(questions, [q.answerable for q in questions], args.limit)
    if args.rest_of:
        sampled = {id(q) for q in stratified_sample(questions, [q.answerable for q in questions], args.rest_of)}
        questions = [q for q in questions if id(q) not in sampled]
    if args.add and (absent := [q.question for q in questions if question_id(q.question) not in stored]):
        parser.error(f"{len(absent)} questions are not in {target}: give the --limit it was made with")
    rows = []
    with temporary_retriever(settings, args.corpus) as retriever, Progress() as progress:
        guard = GuardedRAG.from_config(settings, retriever=retriever).guard
        model = guard.judge
        assert isinstance(model, ChatLlamaCpp), "the study runs the embedded model"
        task = progress.add_task(f"{args.name} / {args.preset}", total=len(questions))
        for q in questions:
            docs, retrieval_s = timed(lambda q=q: retriever.invoke(q.question))
            row = {"id": question_id(q.question), "answerable": q.answerable, "kind": q.kind}
            found = signals_for(model, guard, q.question, docs, layouts=not args.no_layouts, only=only)
            if args.add:
                row = stored[row["id"]]
                if found["verdict"] != row["verdict"]:
                    print(f"{row['id']}: verdict {found['verdict']} now, {row['verdict']} stored")
                row.update({key: found[key] for name in args.add for key in (name, f"{name}_s")})
            else:
                row.update(found, retrieval_s=retrieval_s)
                for text in ("answer", "detail_text"):  # generated from the set's passages: not kept
                    row.pop(text, None)
            rows.append(row)
            progress.advance(task)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"set": args.name, "preset": args.preset, "n": len(rows), "limit": args.limit, "rest_of": args.rest_of}
    target.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
