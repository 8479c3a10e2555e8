"""Whether the paragraph that answers a question reaches the model: recall@k of the gold paragraph under dense
and hybrid retrieval (`chroma.search`), with one store per article as `rag-guard eval` builds for an article's
corpus. Two of the seven wrong Normans answers of issue 30 came from passages retrieved in place of the one
that holds the answer.

    .venv/bin/python bench/retrieval_recall.py ../shared/benchmarks/squad2-fit [--k 4 6]

The folder needs `questions.jsonl` with each answerable question's `paragraph` (the file in `corpus/` that
holds its answer), as the SQuAD sets in ../shared have. No language model runs: only the embedder and Chroma.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from rag_guard.config import load_config
from rag_guard.evaluation.evaluate import temporary_retriever
from rag_guard.evaluation.questions import LabelledQuestion, load_questions
from rag_guard.factory import build_retriever

SEARCHES = ("dense", "hybrid")
REPO = Path(__file__).resolve().parents[1]


def article_of(paragraph: str) -> str:
    """`normans-04.md` -> `normans`: the paragraph files of one article share the part before the number."""
    return paragraph.rsplit("-", 1)[0]


def by_article(questions: list[LabelledQuestion]) -> dict[str, list[tuple[str, str]]]:
    """Each article's answerable questions, with the paragraph file that holds the answer."""
    grouped: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
    for q in questions:
        paragraph = (q.model_extra or {}).get("paragraph")
        if q.answerable and paragraph:
            grouped[article_of(paragraph)].append((q.question, paragraph))
    return dict(grouped)


def recall(folder: Path, ks: list[int]) -> dict[str, dict[str, int]]:
    """Per article: how many questions had their gold paragraph among the top k, for each search and k."""
    settings = load_config(REPO / "config.yaml", env={})
    chroma = settings.chroma.model_copy(update={"k": max(ks)})
    settings = settings.model_copy(update={"chroma": chroma})
    articles = by_article(load_questions(folder / "questions.jsonl"))
    if not articles or not (folder / "corpus").is_dir():
        raise SystemExit(
            f"{folder} needs corpus/ and answerable questions with a `paragraph` (the corpus file holding the "
            "answer); squad2-fit and squad2-normans have both, squad2-train has neither."
        )
    found: dict[str, dict[str, int]] = {}
    for article, questions in sorted(articles.items()):
        with tempfile.TemporaryDirectory(prefix="rag_guard_recall_") as tmp:
            for path in (folder / "corpus").glob(f"{article}-*.md"):
                shutil.copy(path, tmp)
            with temporary_retriever(settings, Path(tmp)) as retriever:
                counts = {"questions": len(questions)}
                for search in SEARCHES:
                    ranked = build_retriever(chroma.model_copy(update={"search": search}), retriever.store)
                    for question, paragraph in questions:
                        sources = [doc.metadata["source"] for doc in ranked.invoke(question)]
                        for k in ks:
                            key = f"{search}@{k}"
                            counts[key] = counts.get(key, 0) + (paragraph in sources[:k])
        found[article] = counts
        print(f"{article}: {counts}", flush=True)
    return found


def table(found: dict[str, dict[str, int]], ks: list[int]) -> str:
    keys = [f"{search}@{k}" for k in ks for search in SEARCHES]
    total = {key: sum(counts[key] for counts in found.values()) for key in ["questions", *keys]}
    rows = ["| article | questions | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for article, counts in [*found.items(), ("**all**", total)]:
        cells = [f"{counts[key] / counts['questions']:.3f}" for key in keys]
        rows.append(f"| {article} | {counts['questions']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a benchmark folder with questions.jsonl and corpus/")
    parser.add_argument("--k", type=int, nargs="+", default=[4, 6])
    args = parser.parse_args()
    print(table(recall(args.folder, args.k), args.k))


if __name__ == "__main__":
    main()
