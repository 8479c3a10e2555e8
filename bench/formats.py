"""The same article as Markdown, PDF, HTML and Word: does the guard decide the same on its questions?

One bundled article is converted (PDF with fpdf2, HTML with markdown-it, Word with python-docx), put back among
the other bundled articles in its new format, and `rag-guard eval` runs the article's questions (those naming
`--topic`) over each corpus. Prints each question's decision per format and the share that match the Markdown
original; writes bench/results/formats-<UTC time>.json.

    .venv/bin/python bench/formats.py --article voyager --topic Voyager
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rag_guard.config import load_config
from rag_guard.evaluation.evaluate import Evaluator
from rag_guard.evaluation.questions import load_questions

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("md", "pdf", "html", "docx")


def blocks(markdown: str) -> list[tuple[int, str]]:
    """The article's blocks: (heading level, text) for a heading, (0, text) for a paragraph, lines joined."""
    found = []
    for block in (b.strip() for b in markdown.split("\n\n") if b.strip()):
        level = len(block) - len(block.lstrip("#"))
        found.append((level, " ".join(block.lstrip("#").split())))
    return found


def to_pdf(markdown: str, path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    for level, text in blocks(markdown):
        pdf.set_font("helvetica", "B" if level else "", 13 if level else 11)
        pdf.multi_cell(0, 7 if level else 6, text)
        pdf.ln(4)
    pdf.output(str(path))


def to_html(markdown: str, path: Path) -> None:
    from markdown_it import MarkdownIt

    article = MarkdownIt().render(markdown)
    path.write_text(
        "<!doctype html><html><head><title>Notes</title><script>var seen = 1;</script></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/articles'>All articles</a></nav>"
        f"<main><article>{article}</article></main><footer>Written for rag_guard.</footer></body></html>",
        encoding="utf-8",
    )


def to_docx(markdown: str, path: Path) -> None:
    import docx

    document = docx.Document()
    for level, text in blocks(markdown):
        if level:
            document.add_heading(text, level=level)
        else:
            document.add_paragraph(text)
    document.save(str(path))


CONVERT = {"pdf": to_pdf, "html": to_html, "docx": to_docx}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--article", default="voyager", help="a bundled article's name (corpora/articles/NAME.md)")
    parser.add_argument("--topic", default="Voyager", help="the article's questions are those naming this word")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = parser.parse_args()

    settings = load_config(args.config)
    questions = [
        q for q in load_questions(ROOT / "corpora" / "questions.jsonl") if args.topic.lower() in q.question.lower()
    ]
    source = ROOT / "corpora" / "articles" / f"{args.article}.md"
    decisions: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="rag_guard_formats_") as tmp, Evaluator(settings) as evaluator:
        for kind in FORMATS:
            corpus = Path(tmp) / kind
            shutil.copytree(ROOT / "corpora" / "articles", corpus / "articles")
            if kind != "md":
                (corpus / "articles" / source.name).unlink()
                CONVERT[kind](source.read_text(encoding="utf-8"), corpus / "articles" / f"{args.article}.{kind}")
            report = evaluator.evaluate(corpus, questions)
            decisions[kind] = [row.decision.value for row in report.rows]

    table = Table(title=f"{args.article}: the guard's decision on its {len(questions)} questions, by format")
    for column in ("question", *FORMATS):
        table.add_column(column)
    for i, question in enumerate(questions):
        table.add_row(question.question, *(decisions[kind][i] for kind in FORMATS))
    Console().print(table)
    same = {
        kind: sum(a == b for a, b in zip(decisions["md"], decisions[kind], strict=True)) / len(questions)
        for kind in FORMATS[1:]
    }
    for kind, share in same.items():
        print(f"{kind}: the same decision as Markdown on {share:.0%} of the questions")
    out = ROOT / "bench" / "results" / f"formats-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps(
            {
                "article": args.article,
                "questions": [q.question for q in questions],
                "decisions": decisions,
                "same_as_markdown": same,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
