"""A probe across sets and styles (issue 27): fitted on the states a suite reading kept, one set left out at a
time, scored on the sets it never saw, and compared with the prompt-level readings set by set and per style.

    .venv/bin/python bench/probe_styles.py bench/suites/gate.yaml --features suite-states.npz --fit squad2-fit \
        --held-out squad2-normans --held-out bundled --held-out handwritten [--layers 17 --layers 14+20] \
        [--calls verdict --calls verdict+extract] [--current SUITE_OUT] [--write probe.json]

Every figure is held out: a fitted set (e.g. each squad2-fit article) is scored by the probe fitted on the
others (`fit-probe --split-by source`), a held-out set by the probe fitted on all fitted sets. `--current`
adds the shipped default's AUROC per set, read from an `eval-suite` folder judged with it. Prints markdown.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from rag_guard.config import load_config
from rag_guard.evaluation.evaluate import EvalReport
from rag_guard.evaluation.metrics import gate_quality
from rag_guard.evaluation.probe_command import fit_probe_on_features
from rag_guard.evaluation.suite import load_suite
from rag_guard.evaluation.suite_scores import ScoredRow, SetScore, mean_gain_interval, set_score
from rag_guard.judging.decision import decide, decide_with_probe
from rag_guard.judging.signals import Signals

COLUMNS = ("verdict", "verdict + answer start", "configured")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", type=Path)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--fit", action="append", required=True, help="a set to fit on, one fold per set")
    parser.add_argument("--held-out", action="append", default=[], help="a set to score, never fit")
    parser.add_argument("--layers", action="append", help="17, or 14+20 side by side; repeat to compare")
    parser.add_argument("--calls", action="append", help="verdict, extract or verdict+extract; repeat to compare")
    parser.add_argument("--current", type=Path, help="an eval-suite folder judged with the shipped default")
    parser.add_argument("--write", type=Path, help="save the probe fitted on every fitted set here")
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    args = parser.parse_args()

    settings = load_config(args.config)
    layer_sets = [tuple(int(x) for x in text.split("+")) for text in args.layers] if args.layers else None
    calls = [tuple(text.split("+")) for text in args.calls] if args.calls else None
    run = fit_probe_on_features(settings, args.features, args.fit, args.held_out, calls, layer_sets)
    if args.write:
        run.probe.save(args.write)

    styles = {entry.name: entry.style for entry in load_suite(args.suite).sets}
    by_set: dict[str, list[ScoredRow]] = defaultdict(list)
    for row, score in run.scores:
        signals = Signals(verdict=row.verdict, extract=row.extract)
        by_set[row.source].append(ScoredRow(answerable=row.answerable, p_sufficient=score, signals=signals))
    scored = [set_score(name, styles[name.split("/")[0]], rows) for name, rows in by_set.items()]
    current = _current(args.current, list(by_set)) if args.current else {}

    best = run.scored[0]
    bound = "none" if run.probe.max_lowering is None else f"{run.probe.max_lowering:g}"
    print(f"Probe: {best.reading}, C {best.c:g}; bound on lowering (log-odds): {bound}; {run.n} questions fitted.\n")
    print("| reading | C | pooled AUROC out of fold |\n|---|---|---|")
    for candidate in run.scored:
        print(f"| {candidate.reading} | {candidate.c:g} | {candidate.auroc:.3f} |")
    print("\n| bound | mean over fitted sets | worst |\n|---|---|---|")
    for b in run.bounds:
        print(f"| {'none' if b.bound is None else f'{b.bound:g}'} | {b.mean:.3f} | {b.worst:.3f} |")
    print("\n| set | style | n | verdict | verdict + answer start | shipped default | candidate |")
    print("|---|---|---|---|---|---|---|")
    for score in scored:
        verdict, both, candidate = (_f(score.auroc[c]) for c in COLUMNS)
        fitted = "" if score.name.split("/")[0] in args.held_out else " (out of fold)"
        shipped = _f(current.get(score.name))
        print(f"| {score.name}{fitted} | {score.style} | {score.n} | {verdict} | {both} | {shipped} | {candidate} |")
    print("\n| style | sets | verdict | verdict + answer start | shipped default | candidate | candidate - v+as |")
    print("|---|---|---|---|---|---|---|")
    for style in sorted({s.style for s in scored}):
        mine = [s for s in scored if s.style == style]
        cells = [_mean_worst([s.auroc[c] for s in mine]) for c in COLUMNS[:2]]
        shipped = _mean_worst([current.get(s.name) for s in mine]) if current else "n/a"
        gain = mean_gain_interval([by_set[s.name] for s in mine])
        interval = "n/a" if gain is None else f"{gain[0]:+.3f} [{gain[1]:+.3f}, {gain[2]:+.3f}]"
        candidate = _mean_worst([s.auroc["configured"] for s in mine])
        print(f"| {style} | {len(mine)} | {cells[0]} | {cells[1]} | {shipped} | {candidate} | {interval} |")
    print(
        f"\nAt the thresholds ({settings.guard.answer_threshold} / {settings.guard.clarify_threshold}), pooled per "
        "style: coverage (answerable answered), answered precision, unanswerable answered; the candidate with the "
        "probe's doubt clarifying (`decide_with_probe`) and refusing (`decide`).\n"
    )
    print("| style | reading | coverage | answered precision | unanswerable answered | refused / clarified |")
    print("|---|---|---|---|---|---|")
    asks_extract = "extract" in settings.guard.signals
    for style in sorted({s.style for s in scored}):
        rows = [(row, score) for row, score in run.scores if styles[row.source.split("/")[0]] == style]
        labels = [row.answerable for row, _ in rows]
        prompt = [Signals(verdict=r.verdict, extract=r.extract if asks_extract else None).combined() for r, _ in rows]
        at = (settings.guard.answer_threshold, settings.guard.clarify_threshold)
        compared = {
            "verdict": [decide(r.verdict, *at) for r, _ in rows],
            "verdict + answer start": [
                decide(Signals(verdict=r.verdict, extract=r.extract).combined(), *at) for r, _ in rows
            ],
            "candidate, doubt refuses": [decide(p, *at) for _, p in rows],
            "candidate, doubt clarifies": [
                decide_with_probe(p, q, *at) for (_, p), q in zip(rows, prompt, strict=True)
            ],
        }
        for reading, decisions in compared.items():
            q = gate_quality([p for _, p in rows], labels, decisions, *at)
            refused = q.answerable.refuse + q.unanswerable.refuse
            clarified = q.answerable.clarify + q.unanswerable.clarify
            print(
                f"| {style} | {reading} | {_f(q.coverage)} | {_f(q.answered_precision)} | "
                f"{_f(q.unanswerable_answered_rate)} | {refused} / {clarified} |"
            )


def _current(folder: Path, names: list[str]) -> dict[str, float | None]:
    """The shipped default's AUROC per set, from the reports an eval-suite run saved."""
    found: dict[str, float | None] = {}
    for name in names:
        file = folder / f"{name.replace('/', '__')}.json"
        if file.is_file():
            report = EvalReport.model_validate_json(file.read_text(encoding="utf-8"))
            rows = [ScoredRow.model_validate(row.model_dump()) for row in report.rows]
            found[name] = _configured(set_score(name, "", rows))
    return found


def _configured(score: SetScore) -> float | None:
    return score.auroc["configured"]


def _mean_worst(values: list[float | None]) -> str:
    kept = [v for v in values if v is not None]
    return f"{sum(kept) / len(kept):.3f} ({min(kept):.3f})" if kept else "n/a"


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
