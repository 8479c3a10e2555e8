"""The reply study: what the user reads after the gate, for candidate answer and clarify instructions.

Each question is retrieved and judged once by the guard as configured (the shipped default: every default
signal, the probe when it ships). Then, continuing the guard's cached prompt as the pipeline does:

- when the gate answers, each candidate answer instruction writes an answer, scored against the question's
  gold `answer` (`rag_guard.evaluation.answer_scoring`: right, token F1, cited), and the answer check's one token
  (`ANSWER_CHECK_INSTRUCTION`) is read after it;
- when the gate clarifies, and for every question labelled with a `missing` part whatever the decision,
  each candidate clarify instruction writes its message (the shipped one a copy of the unanswered part,
  which `clarify.py` builds the message around), scored on whether it names the missing part.

Paired: every candidate sees the same passages and verdicts. Writes numbers only to
bench/results/replies-<set>.json (questions are named by a hash: a public set's text stays out of the
repository); `--texts FILE` keeps the generated text elsewhere, for reading. Run:

    .venv/bin/python bench/replies.py --corpus corpora --questions corpora/questions.jsonl --name bundled
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from rich.progress import Progress
from signals import p_of, question_id

from rag_guard.config import load_config
from rag_guard.evaluation.answer_scoring import ScoredText, answer_quality, names, score_answer
from rag_guard.evaluation.evaluate import temporary_retriever
from rag_guard.evaluation.metrics import stratified_sample
from rag_guard.evaluation.questions import LabelledQuestion, load_questions
from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.prompts import follow_up
from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply import prompts
from rag_guard.reply.clarify import clarifying_message
from rag_guard.text.words import cites

ROOT = Path(__file__).resolve().parent.parent
CHECK_THRESHOLDS = (0.3, 0.5, 0.7)

ANSWERS = {
    "three_sentences": (  # the instruction before issue 15
        "Task: answer in one to three sentences from the passages, citing them as [1], [2]. State nothing "
        "they do not; if they cover only part of the question, say what is missing."
    ),
    "one_sentence": (
        "Task: answer the question in one short sentence, in the passages' own words, citing the passage as "
        "[1] or [2]. Give only the answer: no preamble and no comment on the passages."
    ),
    "cite_example": (
        "Task: answer the question in one or two sentences, in the passages' words, citing the passage each "
        "fact comes from, like this: The bridge opened in 1931 [2]. Add nothing the question does not ask for, "
        "and state nothing the passages do not."
    ),
    "answer_first": prompts.ANSWER_INSTRUCTION,  # shipped
}
CLARIFIES = {
    "ask_missing": (  # the instruction before issue 15: the model's question is the message
        "Task: the passages above do not fully answer the question. Ask the user one short question that "
        "names the information that is missing or ambiguous, and nothing else."
    ),
    "covered_then_missing": (
        "Task: the passages above do not answer all of the question. Reply in two short sentences. First say "
        "what the passages do state about it, citing them as [1], [2]. Then name the part of the question they "
        "do not state, and ask the user to narrow the question or supply that. State nothing they do not."
    ),
    "fill_in": (
        "Task: the passages above do not answer all of the question. Reply in this form, filling in the "
        "parts in angle brackets from the passages and the question only: The passages say <what they state "
        "about the question> [n], but not <the part of the question they leave out>. Could you narrow the "
        "question, or tell me where to find that?"
    ),
    "copied_part": prompts.CLARIFY_INSTRUCTION,  # shipped: the message is assembled around the copy
}
ASSEMBLED = {"copied_part"}


def generate(model: ChatLlamaCpp, messages: list[BaseMessage]) -> tuple[str, float, float]:
    start = time.perf_counter()
    reply = model.invoke(messages)
    return reply.text.strip(), time.perf_counter() - start, float(len(reply.text.split()))


def replies_for(model: ChatLlamaCpp, guard: SufficiencyGuard, q: LabelledQuestion, docs: list[Any]) -> dict[str, Any]:
    verdict = guard.invoke({"question": q.question, "documents": docs})
    judged = guard.messages(q.question, docs[: verdict.documents_used])
    row: dict[str, Any] = {"decision": verdict.decision.value, "p": verdict.p_sufficient, "texts": {}}
    if verdict.signals is not None:
        row["prompt_level"] = verdict.signals.combined()
    if verdict.decision is Decision.ANSWER:
        for name, instruction in ANSWERS.items():
            asked = follow_up(judged, "True", instruction)
            text, seconds, words = generate(model, asked)
            check = model.invoke(follow_up(asked, text, prompts.VERIFY_INSTRUCTION), max_tokens=1, logprobs=True)
            scored = score_answer(text, q.answerable, q.answer)
            row[f"answer:{name}"] = {**scored.model_dump(), "s": seconds, "words": words, "check": p_of(check)}
            row["texts"][f"answer:{name}"] = text
    if verdict.decision is Decision.CLARIFY or q.missing is not None:
        for name, instruction in CLARIFIES.items():
            text, seconds, words = generate(model, follow_up(judged, "False", instruction))
            if name in ASSEMBLED:
                text = clarifying_message(q.question, docs[: verdict.documents_used], text)
            named = names(text, q.missing) if q.missing is not None else None
            row[f"clarify:{name}"] = {"names_missing": named, "cited": cites(text), "s": seconds, "words": words}
            row["texts"][f"clarify:{name}"] = text
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ANSWERS:
        got = [r[f"answer:{name}"] for r in rows if f"answer:{name}" in r]
        if not got:
            continue
        quality = answer_quality([ScoredText(**{k: g[k] for k in ("right", "f1", "cited")}) for g in got])
        figures: dict[str, Any] = {
            **quality.model_dump(include={"answers_scored", "answers_right", "answer_f1_mean", "answers_uncited"}),
            "words_median": statistics.median(g["words"] for g in got),
            "seconds_median": statistics.median(g["s"] for g in got),
        }
        for t in CHECK_THRESHOLDS:
            kept = [g for g in got if g["check"] is not None and g["check"] >= t and g["right"] is not None]
            figures[f"check>={t}"] = {
                "kept": len(kept),
                "answers_right": sum(g["right"] for g in kept) / len(kept) if kept else None,
            }
        out[f"answer:{name}"] = figures
    for name in CLARIFIES:
        got = [r[f"clarify:{name}"] for r in rows if f"clarify:{name}" in r]
        labelled = [g["names_missing"] for g in got if g["names_missing"] is not None]
        out[f"clarify:{name}"] = {
            "messages": len(got),
            "missing_labelled": len(labelled),
            "missing_named": sum(labelled) / len(labelled) if labelled else None,
            "cited": sum(g["cited"] for g in got),
            "words_median": statistics.median(g["words"] for g in got) if got else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--name", required=True, help="the set's name in the output file")
    parser.add_argument("--limit", type=int, default=None, help="a stratified sample of this many questions")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--texts", type=Path, default=None, help="keep the generated text here (JSON Lines)")
    args = parser.parse_args()

    settings = load_config(ROOT / "config.yaml")
    questions = load_questions(args.questions)
    if args.limit:
        questions = stratified_sample(questions, [q.answerable for q in questions], args.limit)
    rows, texts = [], []
    with temporary_retriever(settings, args.corpus) as retriever, Progress() as progress:
        guard = GuardedRAG.from_config(settings, retriever=retriever).guard
        model = guard.judge
        assert isinstance(model, ChatLlamaCpp), "the study runs the embedded model"
        task = progress.add_task(args.name, total=len(questions))
        for q in questions:
            row = {"id": question_id(q.question), "answerable": q.answerable, "kind": q.kind}
            row.update(replies_for(model, guard, q, retriever.invoke(q.question)))
            texts.append({"question": q.question, "kind": q.kind, "decision": row["decision"], **row.pop("texts")})
            rows.append(row)
            progress.advance(task)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"replies-{args.name}.json"
    meta = {"set": args.name, "n": len(rows), "limit": args.limit, "answers": ANSWERS, "clarifies": CLARIFIES}
    result = {"meta": meta, "summary": summary(rows), "rows": rows}
    target.write_text(json.dumps(result, indent=1) + "\n")
    if args.texts:
        args.texts.write_text("".join(json.dumps(t) + "\n" for t in texts))
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
