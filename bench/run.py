"""What the guard costs: latency of plain, guarded, single-pass and naively guarded RAG, retrieval, ingest
(text, and a 200-page PDF beside the same text).

Run with `make bench` (or `.venv/bin/python bench/run.py --help`). Latency variants run question by question,
interleaved, each from a cold KV cache, so machine noise hits them alike and the ratios are fair. Results
print as a table and are written to bench/results/<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.messages import BaseMessage, HumanMessage
from rich.console import Console
from rich.table import Table

from rag_guard.config import Settings, load_config
from rag_guard.evaluation.questions import LabelledQuestion, load_questions
from rag_guard.factory import build_embeddings, build_retriever
from rag_guard.judging.decision import Decision
from rag_guard.judging.prompts import build_messages, format_context
from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.prompts import ANSWER_INSTRUCTION
from rag_guard.store import embedding_label, ensure_ingested, ingest, open_store

ROOT = Path(__file__).resolve().parent.parent
console = Console()
T = TypeVar("T")

NAIVE_GRADER = (
    "You are a grader assessing whether a retrieved context is sufficient to answer a user question.\n\n"
    "Question: {question}\n\n{context}\n\n"
    "Is the context sufficient to answer the question? Give a binary score, True or False, then a short "
    "justification."
)
"""The tutorial guard: its own prompt (question first, so no prefix is shared) and a free-form reply."""
SINGLE_PASS_THRESHOLDS = {"answer_threshold": 0.55, "clarify_threshold": 0.45}


@dataclass
class Latencies:
    """Per-question wall-clock seconds of each variant, and what the guarded variant decided."""

    plain: list[float] = field(default_factory=list)
    plain_prompt_eval: list[float] = field(default_factory=list)
    guarded: list[float] = field(default_factory=list)
    guarded_no_probe: list[float] = field(default_factory=list)
    guard_s: list[float] = field(default_factory=list)
    guard_no_probe_s: list[float] = field(default_factory=list)
    no_probe_decision: list[Decision] = field(default_factory=list)
    single_pass: list[float] = field(default_factory=list)
    naive: list[float] = field(default_factory=list)
    guarded_decision: list[Decision] = field(default_factory=list)
    naive_tokens: list[int] = field(default_factory=list)


def timed(call: Callable[..., T], *args: Any) -> tuple[T, float]:
    started = time.perf_counter()
    result = call(*args)
    return result, time.perf_counter() - started


def plain_rag(rag: GuardedRAG, question: str) -> float:
    """Retrieve and answer with no guard; returns the seconds the answer's prompt evaluation took."""
    documents = rag.guard.fit(question, rag.retriever.invoke(question))
    reply = rag.answerer.invoke(build_messages(question, documents, ANSWER_INSTRUCTION))
    return float(reply.response_metadata["prompt_eval_s"])


def naive_guarded_rag(rag: GuardedRAG, question: str) -> int:
    """Retrieve, grade with a separate free-form prompt (up to 500 tokens), answer if it said True."""
    documents = rag.guard.fit(question, rag.retriever.invoke(question))
    grader: list[BaseMessage] = [
        HumanMessage(content=NAIVE_GRADER.format(question=question, context=format_context(documents)))
    ]
    verdict = rag.answerer.invoke(grader, max_tokens=500)
    if re.match(r"\W*true", verdict.text, re.IGNORECASE):
        rag.answerer.invoke(build_messages(question, documents, ANSWER_INSTRUCTION))
    return int(verdict.usage_metadata["output_tokens"]) if verdict.usage_metadata else 0


VARIANTS = ("plain", "guarded", "guarded_no_probe", "single_pass", "naive")


def without_probe(rag: GuardedRAG) -> GuardedRAG:
    """The same guarded pipeline on the same GGUF loaded without the graph callback, the probe left out:
    what reading the hidden state costs (graph pauses, the callback per node) is the difference."""
    model = rag.answerer
    assert isinstance(model, ChatLlamaCpp)
    bare = model.model_copy(update={"read_hidden_states": False})
    signals = tuple(s for s in rag.guard.signals if s != "probe")
    guard = rag.guard.model_copy(update={"signals": signals, "probe": None, "judge": bare})
    return rag.model_copy(update={"guard": guard, "answerer": bare})


def between_questions(rag: GuardedRAG, model: ChatLlamaCpp) -> None:
    """Leave the cache as a running pipeline leaves it for its next question: the last question's prompt
    forgotten, the system text that every question's prompt begins with still evaluated."""
    model.forget_prompt()
    model.invoke([rag.guard.messages("", [])[0], HumanMessage(content="")], max_tokens=1)


def measure_latency(rag: GuardedRAG, questions: list[LabelledQuestion], variants: tuple[str, ...]) -> Latencies:
    # Single-pass verdicts sit lower (0.40-0.67 on the bundled set against 0.25-0.95 for the one-token
    # verdict), so that mode runs with thresholds that answer about as often.
    single_guard = rag.guard.model_copy(update=SINGLE_PASS_THRESHOLDS)
    single = rag.model_copy(update={"single_pass": True, "guard": single_guard})
    unprobed = without_probe(rag)
    model = rag.answerer
    if not isinstance(model, ChatLlamaCpp):
        sys.exit("bench measures the embedded model: set model.provider: llamacpp")
    rag.invoke(questions[0].question)  # load the model and the embedder outside the timings
    if "guarded_no_probe" in variants:
        unprobed.invoke(questions[0].question)
    out = Latencies()
    for n, q in enumerate(questions, start=1):
        order = list(variants)
        random.Random(n).shuffle(order)  # no variant always runs first, on a cooler CPU
        for variant in order:
            between_questions(rag, model)
            if variant == "plain":
                prompt_eval, seconds = timed(plain_rag, rag, q.question)
                out.plain.append(seconds)
                out.plain_prompt_eval.append(prompt_eval)
            elif variant == "guarded":
                result, seconds = timed(rag.invoke, q.question)
                out.guarded.append(seconds)
                out.guarded_decision.append(result.decision)
                out.guard_s.append(result.timings.guard_s or 0.0)
            elif variant == "guarded_no_probe":
                between_questions(unprobed, unprobed.answerer)  # type: ignore[arg-type]
                result, seconds = timed(unprobed.invoke, q.question)
                out.guarded_no_probe.append(seconds)
                out.no_probe_decision.append(result.decision)
                out.guard_no_probe_s.append(result.timings.guard_s or 0.0)
            elif variant == "single_pass":
                _, seconds = timed(single.invoke, q.question)
                out.single_pass.append(seconds)
            else:
                tokens, seconds = timed(naive_guarded_rag, rag, q.question)
                out.naive.append(seconds)
                out.naive_tokens.append(tokens)
        timings = "  ".join(f"{v} {getattr(out, v)[-1]:.2f}s" for v in variants)
        console.print(f"[{n}/{len(questions)}] {timings}  {q.question[:50]}")
    return out


def synthetic_corpus(directory: Path, chunks: int, chunk_size: int) -> None:
    """About `chunks` chunks of shuffled sentences from the bundled articles, 100 chunks to a file."""
    sentences = [
        s.strip()
        for path in sorted((ROOT / "corpora" / "articles").glob("*.md"))
        for s in re.split(r"(?<=[.!?])\s+", path.read_text(encoding="utf-8"))
        if len(s.strip()) > 30 and not s.lstrip().startswith("#")
    ]
    rng = random.Random(0)
    per_file = 100
    for f in range((chunks + per_file - 1) // per_file):
        paragraphs = []
        for c in range(per_file):
            text = f"Record {f}-{c}."
            while len(text) < chunk_size * 0.8:
                text += " " + rng.choice(sentences)
            paragraphs.append(text)
        (directory / f"synthetic_{f:04d}.md").write_text("\n\n".join(paragraphs), encoding="utf-8")


def measure_store(settings: Settings, chunks: int, questions: list[LabelledQuestion]) -> dict[str, float]:
    """Ingest throughput and retrieval latency on a fresh collection of about `chunks` chunks."""
    with tempfile.TemporaryDirectory(prefix="rag_guard_bench_") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        synthetic_corpus(corpus, chunks, settings.chroma.chunk_size)
        chroma = settings.chroma.model_copy(update={"persist_directory": Path(tmp) / "chroma"})
        embeddings = build_embeddings(settings.embeddings, settings.cache_dir)
        store = open_store(chroma, embeddings, embedding_label(settings.embeddings), create=True)
        report, ingest_s = timed(ingest, store, corpus, chroma)
        dense = build_retriever(chroma.model_copy(update={"search": "dense"}), store)
        hybrid = build_retriever(chroma.model_copy(update={"search": "hybrid"}), store)
        _, hybrid_first_s = timed(hybrid.invoke, "warm-up")  # builds the keyword index
        dense.invoke("warm-up")
        times, hybrid_times, embed, index = [], [], [], []
        for i in range(200):
            question = questions[i % len(questions)].question
            _, seconds = timed(dense.invoke, question)
            times.append(seconds * 1000)
            _, seconds = timed(hybrid.invoke, question)
            hybrid_times.append(seconds * 1000)
            vector, seconds = timed(embeddings.embed_query, question)
            embed.append(seconds * 1000)
            _, seconds = timed(store.similarity_search_by_vector_with_relevance_scores, vector, chroma.k)
            index.append(seconds * 1000)
        cuts = statistics.quantiles(times, n=100)
        return {
            "store_chunks": report.chunks,
            "ingest_chunks_per_s": report.chunks / ingest_s,
            "retrieval_p50_ms": cuts[49],
            "retrieval_p95_ms": cuts[94],
            # where a retrieval's time goes: embedding the question, then the index lookup
            "retrieval_embed_p50_ms": statistics.median(embed),
            "retrieval_index_p50_ms": statistics.median(index),
            # chroma.search: hybrid, on the same questions in the same loop
            "hybrid_retrieval_p50_ms": statistics.median(hybrid_times),
            "hybrid_over_dense_retrieval": statistics.median(hybrid_times) / statistics.median(times),
            "hybrid_index_build_s": hybrid_first_s,
        }


def measure_document_ingest(settings: Settings, pages: int = 200) -> dict[str, float]:
    """Ingest throughput of a `pages`-page PDF beside the same text as a .txt file, side by side in one run: what
    reading the PDF's text layer adds to chunking and embedding."""
    from fpdf import FPDF  # the dev extra's PDF writer

    with tempfile.TemporaryDirectory(prefix="rag_guard_bench_") as tmp:
        synthetic = Path(tmp) / "synthetic"
        synthetic.mkdir()
        synthetic_corpus(synthetic, pages, settings.chroma.chunk_size)
        paragraphs = "\n\n".join(path.read_text(encoding="utf-8") for path in sorted(synthetic.glob("*.md")))
        texts = paragraphs.split("\n\n")[:pages]  # one chunk-sized paragraph a page
        figures: dict[str, float] = {"document_pages": len(texts)}
        embeddings = build_embeddings(settings.embeddings, settings.cache_dir)
        for kind in ("txt", "pdf"):
            corpus = Path(tmp) / kind
            corpus.mkdir()
            if kind == "pdf":
                pdf = FPDF()
                pdf.set_font("helvetica", size=11)
                for text in texts:
                    pdf.add_page()
                    pdf.multi_cell(0, 6, text)
                pdf.output(str(corpus / "book.pdf"))
            else:
                (corpus / "book.txt").write_text("\n\n".join(texts), encoding="utf-8")
            chroma = settings.chroma.model_copy(update={"persist_directory": Path(tmp) / f"chroma-{kind}"})
            store = open_store(chroma, embeddings, embedding_label(settings.embeddings), create=True)
            report, seconds = timed(ingest, store, corpus, chroma)
            figures[f"{kind}_ingest_s"] = seconds
            figures[f"{kind}_ingest_chunks_per_s"] = report.chunks / seconds
            figures[f"{kind}_pages_per_s"] = len(texts) / seconds
        figures["pdf_over_txt_ingest"] = figures["pdf_ingest_s"] / figures["txt_ingest_s"]
        return figures


def measure_cold_start(config: Path, rag: GuardedRAG, question: str, runs: int = 3) -> dict[str, float]:
    """`rag-guard ask` in a new process, as a user runs it: the median wall time from launch to exit, less what
    the same question takes in a warm process (model loaded, KV cache cold) is the start-up."""
    rag.answerer.forget_prompt()  # type: ignore[attr-defined]
    warm = rag.invoke(question).timings.total_s or 0.0
    cli = Path(sys.executable).with_name("rag-guard")
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [str(cli), "ask", "--json", "--config", str(config), question], capture_output=True, text=True, check=False
        )
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.exit(f"rag-guard ask failed:\n{done.stderr}")
    wall = statistics.median(walls)
    return {"ask_wall_s": wall, "ask_warm_question_s": warm, "cold_start_s": wall - warm}


def sample(questions: list[LabelledQuestion], limit: int | None) -> list[LabelledQuestion]:
    """Every question, or `limit` of them keeping the answerable/unanswerable mix."""
    if limit is None or limit >= len(questions):
        return questions
    answerable = [q for q in questions if q.answerable]
    other = [q for q in questions if not q.answerable]
    take = round(limit * len(answerable) / len(questions))
    rng = random.Random(0)
    return rng.sample(answerable, take) + rng.sample(other, limit - take)


def median_of(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarise(lat: Latencies) -> dict[str, float | None]:
    refused = [i for i, d in enumerate(lat.guarded_decision) if d is Decision.REFUSE]
    answered = [i for i, d in enumerate(lat.guarded_decision) if d is Decision.ANSWER]
    plain, guarded = median_of(lat.plain), median_of(lat.guarded)
    refused_s = median_of([lat.guarded[i] for i in refused])
    refused_prompt_eval = median_of([lat.plain_prompt_eval[i] for i in refused]) if lat.plain_prompt_eval else None
    return {
        "questions": len(lat.guarded),
        "refused": len(refused),
        "answered": len(answered),
        "plain_median_s": plain,
        "guarded_median_s": guarded,
        "single_pass_median_s": median_of(lat.single_pass),
        "naive_median_s": median_of(lat.naive),
        "naive_median_generated_tokens": median_of([float(t) for t in lat.naive_tokens]),
        "guarded_no_probe_median_s": median_of(lat.guarded_no_probe),
        "guarded_over_unguarded": ratio(guarded, plain),
        **probe_cost(lat),
        "single_pass_over_unguarded": ratio(median_of(lat.single_pass), plain),
        "naive_over_unguarded": ratio(median_of(lat.naive), plain),
        "refused_median_s": refused_s,
        "refused_prompt_eval_median_s": refused_prompt_eval,  # the plain variant measures it
        "refused_over_prompt_eval": ratio(refused_s, refused_prompt_eval),
        "refused_over_answered": ratio(refused_s, median_of([lat.guarded[i] for i in answered])),
    }


def probe_cost(lat: Latencies) -> dict[str, float | None]:
    """Per-question ratios, probe read over not: the guard step alone, and the whole guarded question where
    both made the same decision (the probe changes some decisions, and an answer costs more than a refusal)."""
    if not lat.guarded_no_probe:
        return {}
    guard = [a / b for a, b in zip(lat.guard_s, lat.guard_no_probe_s, strict=True) if b]
    same = [
        a / b
        for a, b, x, y in zip(
            lat.guarded, lat.guarded_no_probe, lat.guarded_decision, lat.no_probe_decision, strict=True
        )
        if x is y and b
    ]
    return {
        "probe_guard_over_no_probe": median_of(guard),
        "probe_over_no_probe": median_of(same),
        "probe_same_decision_questions": len(same),
    }


def machine() -> dict[str, object]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "llama_cpp_python": version("llama_cpp_python"),
        "chromadb": version("chromadb"),
    }


def show(results: dict[str, object]) -> None:
    table = Table(title="rag_guard bench")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in results.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.3f}")
        elif not isinstance(value, dict):
            table.add_row(key, str(value))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--questions", type=Path, default=ROOT / "corpora" / "questions.jsonl")
    parser.add_argument("--limit", type=int, default=None, help="a stratified sample of this many questions")
    parser.add_argument("--chunks", type=int, default=10_000, help="store size for retrieval and ingest figures")
    parser.add_argument("--skip-latency", action="store_true", help="only the store figures (no model runs)")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated latency variants to interleave (default: all of {', '.join(VARIANTS)})",
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show up when redirected to a file too

    settings = load_config(args.config)
    questions = sample(load_questions(args.questions), args.limit)
    results: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": settings.model.path.name if settings.model.path else f"preset:{settings.model.preset}",
        "machine": machine(),
    }
    results.update(measure_store(settings, args.chunks, questions))
    results.update(measure_document_ingest(settings))
    if not args.skip_latency:
        rag = GuardedRAG.from_config(settings)
        ensure_ingested(rag.retriever, settings.chroma)
        results.update(measure_cold_start(args.config, rag, questions[0].question))
        variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
        if unknown := set(variants) - set(VARIANTS):
            sys.exit(f"unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
        results["variants"] = list(variants)
        results.update(summarise(measure_latency(rag, questions, variants)))
    show(results)
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    console.print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
