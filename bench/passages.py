"""What the guard is shown, measured: the retrieved chunks turned into passages by each candidate rule
(adjacent chunks merged, `store/reading.py`; the heading in the label, `judging/prompts.py`; chunks far below
the best match left out, `within` here) and by `k`, side by side on one labelled set, one store and one
retrieval per question.

    .venv/bin/python bench/passages.py --corpus DIR --questions FILE [--limit 200] [--store DIR] \
        [--variant k4 --variant k4+merge --variant k4+merge+cut0.15 ...] [--out FILE.json]

A variant is `k<N>` plus any of `merge` (adjacent chunks of one file joined), `bare` (no heading in the
label) and `cut<M>` (chunks whose similarity is more than M below the best one's left out). A variant that
hands the judge the same passages as one already judged reuses its verdict, so only the questions a rule
changes cost a model call. `--store` keeps the ingested corpus between runs (4,901 NoMIRACL passages take
minutes to embed). Printed per variant: AUROC, coverage and answered precision at the configured
thresholds, and the mean characters of passage text per question (the prompt's length); `--out` keeps every
question's probability for threshold studies.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from langchain_core.documents import Document

from rag_guard.config import load_config
from rag_guard.evaluation.metrics import auroc, stratified_sample
from rag_guard.evaluation.questions import load_questions
from rag_guard.factory import build_retriever, load_models, open_configured_store
from rag_guard.pipeline import GuardedRAG
from rag_guard.store import ingest
from rag_guard.store.reading import as_read

REPO = Path(__file__).resolve().parents[1]
VARIANT = re.compile(r"k(?P<k>\d+)(?P<rules>(\+(merge|bare|cut0?\.\d+))*)")


@dataclass(frozen=True)
class Variant:
    name: str
    k: int
    merge: bool
    bare: bool
    cut: float | None

    @classmethod
    def parse(cls, name: str) -> Variant:
        if not VARIANT.fullmatch(name):
            raise SystemExit(f"variant {name!r}: write k<N> then +merge, +bare or +cut<M>, e.g. k4+merge+cut0.15")
        rules = name.split("+")[1:]
        cuts = [float(rule[3:]) for rule in rules if rule.startswith("cut")]
        return cls(name, int(name.split("+")[0][1:]), "merge" in rules, "bare" in rules, cuts[0] if cuts else None)

    def passages(self, ranked: list[Document]) -> list[Document]:
        shown = ranked[: self.k]
        if self.cut is not None:
            shown = within(shown, self.cut)
        if self.merge:
            shown = as_read(shown)
        if self.bare:
            shown = [Document(id=d.id, page_content=d.page_content, metadata=_unheaded(d.metadata)) for d in shown]
        return shown


def within(chunks: list[Document], margin: float) -> list[Document]:
    """The candidate rule `cut`: the chunks whose similarity is within `margin` of the best one's."""
    scores = [chunk.metadata.get("score") for chunk in chunks]
    best = max((s for s in scores if isinstance(s, float)), default=None)
    kept = zip(chunks, scores, strict=True)
    return [chunk for chunk, s in kept if best is None or not isinstance(s, float) or s >= best - margin]


def _unheaded(metadata: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in metadata.items() if key != "heading"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--store", type=Path, help="keep the ingested corpus here between runs")
    parser.add_argument("--variant", action="append", help="default: k4+bare, k4, k4+merge")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    variants = [Variant.parse(name) for name in args.variant or ["k4+bare", "k4", "k4+merge"]]

    settings = load_config(REPO / "config.yaml", env={})
    # judged on what is retrieved, never on a line's own context
    questions = [q.model_copy(update={"context": None}) for q in load_questions(args.questions)]
    if args.limit:
        questions = stratified_sample(questions, [q.answerable for q in questions], args.limit)
    with tempfile.TemporaryDirectory(prefix="rag_guard_passages_") as tmp:
        directory = args.store or Path(tmp)
        chroma = settings.chroma.model_copy(
            update={"persist_directory": directory, "k": max(v.k for v in variants), "merge_adjacent": False}
        )
        store = open_configured_store(settings, chroma, create=True)
        started = time.perf_counter()
        ingest(store, args.corpus, chroma)
        print(f"store ready in {time.perf_counter() - started:.0f} s", flush=True)
        retriever = build_retriever(chroma, store)
        ranked = [retriever.invoke(q.question) for q in questions]

    guard = GuardedRAG.from_config(settings, retriever=retriever).guard
    load_models(guard.judge)
    labels = [q.answerable for q in questions]
    seen: dict[tuple[str, str], float | None] = {}
    results: dict[str, dict[str, object]] = {}
    for variant in variants:
        probs: list[float | None] = []
        chars = 0
        started = time.perf_counter()
        for question, found in zip(questions, ranked, strict=True):
            shown = variant.passages(found)
            chars += sum(len(d.page_content) for d in shown)
            key = (question.question, json.dumps([[d.page_content, d.metadata.get("heading")] for d in shown]))
            if key not in seen:
                seen[key] = guard.invoke({"question": question.question, "documents": shown}).p_sufficient
            probs.append(seen[key])
        results[variant.name] = _figures(probs, labels, guard.answer_threshold) | {
            "chars_per_question": chars / len(questions),
            "judge_s": round(time.perf_counter() - started, 1),
            "p": probs,
        }
        shown_figures = {k: v for k, v in results[variant.name].items() if k != "p"}
        print(variant.name, json.dumps(shown_figures), flush=True)
    if args.out:
        payload = {"corpus": str(args.corpus), "questions": str(args.questions), "labels": labels, "variants": results}
        args.out.write_text(json.dumps(payload, indent=1), encoding="utf-8")


def _figures(probs: list[float | None], labels: list[bool], threshold: float) -> dict[str, object]:
    scores = [0.0 if p is None else p for p in probs]
    answered = [p >= threshold for p in scores]
    right = sum(a and y for a, y in zip(answered, labels, strict=True))
    return {
        "auroc": round(auroc(scores, labels) or 0.0, 4),
        "coverage": round(right / max(sum(labels), 1), 3),
        "precision": round(right / sum(answered), 3) if any(answered) else None,
    }


if __name__ == "__main__":
    main()
