"""How the quote-first answer's span is chosen and checked (issue 30), on the same verdicts: the quote's
instruction in several wordings, and one-token checks that put the span to the model as a proposed answer.

    .venv/bin/python bench/span_choice.py ../shared/benchmarks/squad2-fit/corpus \
        ../shared/benchmarks/squad2-fit/questions.jsonl --out span-choice.jsonl [--per-article 8 --seed 7] [--all]

Answerable questions only (a span's rightness needs a gold answer), `--per-article` of each article drawn with
`--seed`, judged against retrieved chunks. Each question the gate answers (every one with `--all`) gets a
quote under each instruction and, for the default instruction's span, each check's P(True). Rows go to `--out`
as JSON Lines, one per question, so a run stopped part way goes on from where it stopped; the summary
(markdown) covers every row in the file. Fit on the squad2-fit or squad2-train articles, never on Normans.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from rag_guard.config import load_config
from rag_guard.evaluation.answer_scoring import contains
from rag_guard.evaluation.evaluate import temporary_retriever
from rag_guard.evaluation.metrics import auroc
from rag_guard.evaluation.questions import LabelledQuestion, load_questions
from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.logprobs import LogprobError, p_true, parse_logprobs
from rag_guard.judging.prompts import ABSTAIN_WORD, EXTRACT_INSTRUCTION
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.clarify import closest_sentence
from rag_guard.reply.quote import read_quote

_ABSTAIN = (
    f"If the passages do not state the answer to this exact question, reply with the single word: {ABSTAIN_WORD}."
)
INSTRUCTIONS = {
    "default": EXTRACT_INSTRUCTION,
    "exact": "Task: copy from the passages above the exact words that answer the question: the complete answer as "
    f"the passages state it, and nothing else. {_ABSTAIN}",
    "typed": "Task: answer the question with the words of the passages above, copied word for word: exactly what "
    "the question asks for (for who, the name; for when, the whole date or period; for where, the place; for "
    f"what or which, the thing itself). {_ABSTAIN}",
    "sentence": f"Task: copy, word for word, the sentence of the passages above that answers the question. {_ABSTAIN}",
}
CHECKS = {
    "proposed": 'Task: a proposed answer to the question is: "{span}". Judge whether the passages above give exactly '
    "this as the answer to the question as asked: the complete answer, not a different detail of the same passage. "
    "Reply with one word: True or False.",
    "correct": "Proposed answer: {span}\nTask: is the proposed answer correct and complete for the question, "
    "according to the passages above? Reply with one word: True or False.",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("questions", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-article", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--all", action="store_true", help="quote and check every question, not only those answered")
    args = parser.parse_args()
    picked = sample(load_questions(args.questions), args.per_article, args.seed)
    args.out.touch()
    done = {json.loads(line)["question"] for line in args.out.read_text().splitlines() if line.strip()}
    asyncio.run(read(args.corpus, [q for q in picked if q.question not in done], args.out, args.all))
    print(summary([json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]))


def sample(questions: list[LabelledQuestion], per_article: int, seed: int) -> list[LabelledQuestion]:
    """`per_article` answerable questions of each article, without their own context (so they are retrieved)."""
    answerable = [q for q in questions if q.answerable]
    random.Random(seed).shuffle(answerable)
    taken: dict[str | None, int] = {}
    picked = []
    for question in answerable:
        article = (question.model_extra or {}).get("article")
        if taken.get(article, 0) < per_article:
            taken[article] = taken.get(article, 0) + 1
            picked.append(question.model_copy(update={"context": None}))
    return picked


async def read(corpus: Path, questions: list[LabelledQuestion], out: Path, every: bool) -> None:
    settings = load_config(None)
    with temporary_retriever(settings, corpus) as retriever, out.open("a") as rows:
        rag = GuardedRAG.from_config(settings, retriever=retriever)
        guard, quote_options = rag.guard, rag.reply.quote_options or {}
        for n, question in enumerate(questions, start=1):
            documents = await retriever.ainvoke(question.question)
            verdict = await guard.ainvoke({"question": question.question, "documents": documents})
            row: dict[str, Any] = {"question": question.question, "gold": question.answer, "decision": verdict.decision}
            if verdict.decision is Decision.ANSWER or every:
                row["quotes"] = {
                    name: await quoted(guard, question, verdict.documents, instruction, quote_options)
                    for name, instruction in INSTRUCTIONS.items()
                }
                if (span := row["quotes"]["default"].get("span")) is not None:
                    row["checks"] = {
                        name: await checked(guard, question.question, verdict.documents, check.format(span=span))
                        for name, check in CHECKS.items()
                    }
            rows.write(json.dumps(row) + "\n")
            rows.flush()
            print(f"{n}/{len(questions)} {verdict.decision}", flush=True)


async def quoted(
    guard: SufficiencyGuard,
    question: LabelledQuestion,
    documents: list[Document],
    instruction: str,
    quote_options: dict[str, Any],
) -> dict[str, Any]:
    asked = guard.messages(question.question, documents, instruction)
    reply = await guard.judge.ainvoke(asked, **guard.fork_options(instruction, quote_options))
    quote = read_quote(reply, documents, question.question)
    if quote is None or quote.echoes:
        return {"reply": reply.text[:200]}
    closest = closest_sentence(question.question, documents)
    return {
        "span": quote.span,
        "sentence": quote.sentence,
        "closest_right": closest is not None and contains(f'"{closest[2]}" [{closest[0]}]', question.answer),
        "right": contains(quote.answer(), question.answer),
        "span_right": contains(quote.span, question.answer),
        "min_token_p": quote.min_token_p,
        "joint_logprob": quote.joint_logprob,
    }


async def checked(guard: SufficiencyGuard, question: str, documents: list[Document], instruction: str) -> float | None:
    reply = await guard.judge.ainvoke(
        guard.messages(question, documents, instruction), **guard.fork_options(instruction)
    )
    try:
        return p_true(parse_logprobs(reply.response_metadata.get("logprobs"))[0])
    except LogprobError:
        return None


def summary(rows: list[dict[str, Any]]) -> str:
    judged = [row for row in rows if "quotes" in row]
    answered = [row for row in judged if row["decision"] == Decision.ANSWER]
    lines = [
        f"{len(rows)} questions, {len(answered)} answered; quotes for {len(judged)}.",
        "",
        "| instruction | answered: quoted | right as shown | span alone right |",
        "|---|---|---|---|",
    ]
    for name in INSTRUCTIONS:
        spans = [row["quotes"][name] for row in answered if "span" in row["quotes"][name]]
        right = sum(q["right"] for q in spans)
        lines.append(f"| {name} | {len(spans)} | {right} | {sum(q['span_right'] for q in spans)} |")
    lines += ["", "| ranks right spans above wrong ones (default instruction) | AUROC, all quoted | AUROC, answered |"]
    lines.append("|---|---|---|")
    signals: dict[str, Callable[[dict[str, Any]], float | None]] = {
        f"check: {name}": lambda row, name=name: row.get("checks", {}).get(name) for name in CHECKS
    }
    for field in ("min_token_p", "joint_logprob"):
        signals[field] = lambda row, field=field: row["quotes"]["default"].get(field)
    for label, score in signals.items():
        figures = [_auroc(judged, score), _auroc(answered, score)]
        lines.append(f"| {label} | " + " | ".join(figures) + " |")
    lines += ["", "| answered, span's least sure word below | spans | right as shown | closest sentence right |"]
    lines.append("|---|---|---|---|")
    spans = [row["quotes"]["default"] for row in answered if "span" in row["quotes"]["default"]]
    for below in (0.3, 0.4, 0.5, None):
        unsure = [q for q in spans if below is None or (q["min_token_p"] is not None and q["min_token_p"] < below)]
        right, closest = sum(q["right"] for q in unsure), sum(q["closest_right"] for q in unsure)
        lines.append(f"| {'(all)' if below is None else below} | {len(unsure)} | {right} | {closest} |")
    return "\n".join(lines)


def _auroc(rows: list[dict[str, Any]], score: Callable[[dict[str, Any]], float | None]) -> str:
    """How well a span's score ranks right spans above wrong ones, with how many of each it saw."""
    scored = []
    for row in rows:
        quote = row["quotes"]["default"]
        if "span" in quote and (value := score(row)) is not None:
            scored.append((value, quote["right"]))
    right = [value for value, ok in scored if ok]
    wrong = [value for value, ok in scored if not ok]
    if not right or not wrong:
        return f"n/a ({len(right)} right, {len(wrong)} wrong)"
    value = auroc([value for value, _ in scored], [ok for _, ok in scored])
    return f"{value:.2f} ({len(right)} right, {len(wrong)} wrong)"


if __name__ == "__main__":
    main()
