"""The reply checks on a public grounding benchmark: HaluEval QA's right and hallucinated answers.

Each answer is checked as the reply policy checks a written answer, against its knowledge passage as the only
retrieved passage (`checks.written_check`: the restatement check, the grounding check's numbers, names, quoted
phrases, content words and denials, and the subject check). `--model-check` adds the model's one-token check
(`guard.verify_answer`) on the answers the model-free checks pass, as the policy does: the guard judges the
question first, then the check token continues the answer's prompt.

Prints precision, recall and F1 of withholding a hallucinated answer, and the share of right answers kept;
writes numbers only (never the set's text) to bench/results/halueval-<UTC time>.json. The set is for scoring
the checks, never for tuning them.

    .venv/bin/python bench/halueval.py [--model-check --limit 300]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from rich.console import Console
from rich.progress import track
from rich.table import Table

from rag_guard.config import load_config
from rag_guard.judging.decision import Decision
from rag_guard.reply.checks import AnswerCheck, check_prompt, read_check, written_check
from rag_guard.reply.grounding import item_kind
from rag_guard.reply.prompts import reply_prompt

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SET = ROOT.parent / "shared" / "benchmarks" / "halueval-qa" / "answers.jsonl"


def which_check(check: AnswerCheck) -> str:
    """The check that withheld an answer, for the table: what kind of item failed first."""
    if check.off_subject:
        return "subject"
    if not check.unsupported:
        return "model check" if check.p_supported is not None or check.untrusted else "restatement"
    return item_kind(check.unsupported[0])


def model_checker(config: Path, threshold: float) -> Any:
    """The policy's model check as a function of (question, passage, answer)."""
    from rag_guard.factory import build_guard, build_models

    settings = load_config(config)
    guard = build_guard(settings, build_models(settings).judge)

    def check(question: str, documents: list[Document], answer: str) -> AnswerCheck:
        verdict = guard.invoke({"question": question, "documents": documents})
        asked = check_prompt(reply_prompt(verdict.prompt, Decision.ANSWER) or [], answer)
        return read_check(guard.judge.invoke(asked, **guard.call_options), threshold)

    return check


def scores(rows: list[dict[str, Any]]) -> dict[str, float]:
    caught = sum(r["withheld"] and r["hallucinated"] for r in rows)
    withheld = sum(r["withheld"] for r in rows)
    wrong = sum(r["hallucinated"] for r in rows)
    right = len(rows) - wrong
    precision = caught / withheld if withheld else 1.0
    recall = caught / wrong if wrong else 0.0
    return {
        "n": len(rows),
        "hallucinated": wrong,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "right_kept": sum(not r["withheld"] for r in rows if not r["hallucinated"]) / right if right else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="HaluEval QA answers.jsonl")
    parser.add_argument("--model-check", action="store_true", help="add the model's one-token check")
    parser.add_argument("--threshold", type=float, default=0.5, help="the model check's threshold")
    parser.add_argument("--limit", type=int, help="a random sample of this many answers (seed 0)")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = parser.parse_args()

    items = [json.loads(line) for line in args.set.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.limit:
        items = random.Random(0).sample(items, min(args.limit, len(items)))
    model_check = model_checker(args.config, args.threshold) if args.model_check else None
    rows = []
    started = time.perf_counter()
    for item in track(items, description="checking answers"):
        documents = [Document(page_content=item["knowledge"], metadata={"source": "knowledge"})]
        check = written_check(item["answer"], item["question"], documents)
        if check.passed and model_check is not None:
            check = model_check(item["question"], documents, item["answer"])
        rows.append(
            {
                "hallucinated": bool(item["hallucinated"]),
                "withheld": not check.passed,
                "by": None if check.passed else which_check(check),
            }
        )
    seconds = time.perf_counter() - started

    by = Counter((r["by"], r["hallucinated"]) for r in rows if r["by"])
    result = {
        "set": args.set.name,
        "model_check": args.model_check,
        "threshold": args.threshold if args.model_check else None,
        **scores(rows),
        "withheld_by": {
            kind: {"hallucinated": by[(kind, True)], "right": by[(kind, False)]} for kind in sorted({k for k, _ in by})
        },
        "seconds": round(seconds, 1),
    }
    table = Table(title=f"Reply checks on HaluEval QA ({result['n']} answers, {result['hallucinated']} hallucinated)")
    for column in ("precision", "recall", "F1", "right answers kept"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{result[key]:.3f}" for key in ("precision", "recall", "f1", "right_kept")))
    Console().print(table)
    Console().print("withheld by:", result["withheld_by"])
    out = ROOT / "bench" / "results" / f"halueval-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    Console().print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
