"""The probe study: which layers, fitted on what, how many questions, scored where (docs/studies/probe.md's tables).

Reads feature files written by `rag-guard fit-probe --features` and `rag-guard eval --features` (signals and
hidden states per question, no question text) and prints markdown tables. Every figure is held out: a set in
the fit is scored out of fold (folds grouped by article or paragraph), any other set is scored whole.

    .venv/bin/python bench/probe_study.py --fit F --normans F [--probe FILE [--baseline FILE]] [--half FILE]
        [--calls verdict+extract ...] [--layer 17 ...]

`--fit` holds the fitting sets as fit-probe labels them (`squad2-train/...` and `corpora/...`).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from signal_table import paired_bootstrap  # bench/ is the script's folder, so its sibling imports

from rag_guard.evaluation.metrics import auroc, stratified_sample
from rag_guard.evaluation.probe_maths import Candidate, Reading, choose, combination_features, combine, grouped_splits
from rag_guard.evaluation.probe_states import FeatureRow, load_features
from rag_guard.judging.probe import Probe, load_probe
from rag_guard.judging.signals import sigmoid


def readings_in(rows: Sequence[FeatureRow], call_sets: Sequence[tuple[str, ...]]) -> list[Reading]:
    """One reading per layer and set of calls that every row holds."""
    held = set.intersection(*(set(row.states) for row in rows))
    layers = sorted({layer for _, layer in held})
    readings = [Reading(calls, (layer,)) for layer in layers for calls in call_sets]
    return [reading for reading in readings if set(reading.keys) <= held]


def states_of(rows: Sequence[FeatureRow], reading: Reading) -> dict[tuple[str, int], np.ndarray]:
    return {key: np.stack([row.states[key] for row in rows]) for key in reading.keys}


def labels_of(rows: Sequence[FeatureRow]) -> list[bool]:
    return [row.answerable for row in rows]


def default_scores(rows: Sequence[FeatureRow]) -> list[float]:
    """Today's default: the verdict discounted by the answer start."""
    return [row.signals.combined() for row in rows]


def paired_gain(labels: list[bool], better: list[float], base: list[float]) -> tuple[float, float, float]:
    """The signal study's paired bootstrap of an AUROC gain, on these labels."""
    return paired_bootstrap([{"answerable": y} for y in labels], better, base)


class Fit:
    """A probe reading `reading` fitted on `rows` (strength by grouped CV), with its combination."""

    def __init__(self, rows: Sequence[FeatureRow], reading: Reading) -> None:
        self.rows = list(rows)
        labels = labels_of(rows)
        splits = grouped_splits(labels, [row.group for row in rows])
        self.candidate: Candidate = choose(states_of(rows, reading), labels, splits, [reading])[0]
        signals = [row.signals.features() for row in rows]
        self.combination, self.combined_oof = combine(signals, self.candidate.oof, labels, splits)
        from rag_guard.evaluation.probe_maths import fit_probe

        self.probe: Probe = fit_probe(
            states_of(rows, reading),
            labels,
            self.candidate,
            self.combination,
            model_sha256="0" * 64,
            model_name="study",
            prompt_sha256="0" * 64,
            fitted_on=[],
            combination_auroc=None,
        )

    def held_out(self, rows: Sequence[FeatureRow]) -> tuple[list[float], list[float]]:
        """(probe, combined) scores of `rows`: out of fold for rows in the fit, else from the final fit."""
        index = {id(row): i for i, row in enumerate(self.rows)}
        probe, combined = [], []
        for row in rows:
            if id(row) in index:
                i = index[id(row)]
                probe.append(float(self.candidate.oof[i]))
                combined.append(capped(row, probe[-1], self.combined_oof[i]))
            else:
                p, c = apply(self.probe, row)
                probe.append(p)
                combined.append(c)
        return probe, combined


def apply(probe: Probe, row: FeatureRow) -> tuple[float, float]:
    """(probe log-odds, P(sufficient)) of one row, as the guard computes them: the combination, capped at the
    prompt-level score."""
    z = probe.logit(row.by_call)
    features = combination_features([row.signals.features()], np.array([z]))[0]
    return z, capped(row, z, probe.combination.apply(features))


def capped(row: FeatureRow, probe_logit: float, p: float) -> float:
    """`p` capped at the row's prompt-level score by the guard's own rule (`Signals.capped`)."""
    return row.signals.model_copy(update={"probe": sigmoid(probe_logit)}).capped(float(p))


def cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def layer_table(
    train: list[FeatureRow],
    bundled: list[FeatureRow],
    normans: list[FeatureRow],
    call_sets: list[tuple[str, ...]],
    pairs: list[tuple[int, ...]],
    only: list[int] | None = None,
) -> None:
    readings = readings_in(train + bundled + normans, call_sets)
    readings = [reading for reading in readings if not only or set(reading.layers) <= set(only)]
    readings += [Reading(calls, pair) for pair in pairs for calls in call_sets]
    print("| reads | fitted on | C | Normans: probe | Normans: + signals | bundled: probe | bundled: + signals |")
    print("|---|---|---|---|---|---|---|")
    sets = {"squad2-train": train, "bundled": bundled, "both": train + bundled}
    for chosen in readings:
        for name, rows in sets.items():
            fit = Fit(rows, chosen)
            n_probe, n_comb = fit.held_out(normans)
            b_probe, b_comb = fit.held_out(bundled)
            yn, yb = labels_of(normans), labels_of(bundled)
            print(
                f"| {chosen} | {name} | {fit.candidate.c:g} | {cell(auroc(n_probe, yn))} | "
                f"{cell(auroc(n_comb, yn))} | {cell(auroc(b_probe, yb))} | {cell(auroc(b_comb, yb))} |"
            )


def learning_curve(train: list[FeatureRow], normans: list[FeatureRow], reading: Reading, sizes: Sequence[int]) -> None:
    print(f"| training questions (squad2-train, {reading}) | Normans: probe | Normans: probe + signals |")
    print("|---|---|---|")
    for size in [*sizes, len(train)]:
        probe_scores, combined_scores = [], []
        for seed in range(3 if size < len(train) else 1):
            picked = stratified_sample(train, labels_of(train), size, seed=seed)
            fit = Fit(picked, reading)
            p, c = fit.held_out(normans)
            probe_scores.append(auroc(p, labels_of(normans)) or 0)
            combined_scores.append(auroc(c, labels_of(normans)) or 0)
        spread = f" (mean of {len(probe_scores)} draws)" if len(probe_scores) > 1 else ""
        print(f"| {size}{spread} | {statistics.mean(probe_scores):.3f} | {statistics.mean(combined_scores):.3f} |")


def shipped(probe: Probe, rows: list[FeatureRow], name: str) -> None:
    labels = labels_of(rows)
    default = default_scores(rows)
    verdict = [row.verdict for row in rows]
    scored = [apply(probe, row) for row in rows]
    probe_only = [z for z, _ in scored]
    combined = [c for _, c in scored]
    low, high, ahead = paired_gain(labels, combined, default)
    gain = (auroc(combined, labels) or 0) - (auroc(default, labels) or 0)
    print(
        f"- {name} (n={len(rows)}, {sum(labels)} answerable): verdict {cell(auroc(verdict, labels))}, today's "
        f"default {cell(auroc(default, labels))}, probe {cell(auroc(probe_only, labels))}, probe + signals, capped "
        f"{cell(auroc(combined, labels))}; gain over today's default {gain:+.3f}, "
        f"95 % interval [{low:+.3f}, {high:+.3f}], positive in {ahead:.0%} of resamples."
    )


def versus(probe: Probe, baseline: Probe, rows: list[FeatureRow], name: str) -> None:
    """The paired gain of one probe's capped combination over another's, on the same questions."""
    labels = labels_of(rows)
    new = [apply(probe, row)[1] for row in rows]
    old = [apply(baseline, row)[1] for row in rows]
    low, high, ahead = paired_gain(labels, new, old)
    gain = (auroc(new, labels) or 0) - (auroc(old, labels) or 0)
    print(
        f"- {name}: + signals, capped {cell(auroc(new, labels))} against {cell(auroc(old, labels))}; gain "
        f"{gain:+.3f}, 95 % interval [{low:+.3f}, {high:+.3f}], positive in {ahead:.0%} of resamples."
    )


def halves(normans: list[FeatureRow], probe_path: Path, fitted_half: int) -> None:
    """A probe fitted by `rag-guard fit-probe` on one half of the Normans paragraphs, scored on the other."""
    other = [row for row in normans if paragraph_half(row.group) != fitted_half]
    shipped(load_probe(probe_path), other, f"the other half of the Normans paragraphs ({probe_path.name})")


def paragraph_half(group: str) -> int:
    """Odd-numbered paragraphs are half 1, even ones half 0 (`normans-07.md` → 1)."""
    digits = "".join(ch for ch in group if ch.isdigit())
    return int(digits) % 2 if digits else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", type=Path, required=True, help="fit-probe's features: squad2-train and bundled")
    parser.add_argument("--normans", type=Path, required=True, help="eval --features on the Normans slice")
    parser.add_argument("--probe", type=Path, help="the shipped probe file, scored on every set")
    parser.add_argument("--baseline", type=Path, help="another probe file: the paired gain of --probe over it")
    parser.add_argument("--half", type=Path, help="a probe fitted on the odd-numbered Normans paragraphs")
    parser.add_argument("--layer", type=int, action="append", help="only these layers in the layer table")
    parser.add_argument("--pair", action="append", default=[], help="layers side by side, e.g. 14+17")
    parser.add_argument(
        "--calls", action="append", help="whose states: verdict, extract or verdict+extract (default: verdict)"
    )
    parser.add_argument("--curve-layer", type=int)
    parser.add_argument("--skip-layers", action="store_true")
    args = parser.parse_args()
    fitting = load_features(args.fit)
    train = [row for row in fitting if row.source.startswith("squad2-train/")]
    bundled = [row for row in fitting if row.source.startswith("corpora/")]
    normans = load_features(args.normans)
    print(f"train {len(train)}, bundled {len(bundled)}, Normans {len(normans)} questions\n")
    call_sets = [tuple(text.split("+")) for text in args.calls or ["verdict"]]
    if args.probe:
        probe = load_probe(args.probe)
        reading = Reading(tuple(probe.calls), tuple(probe.layers))
        print(f"Shipped probe {args.probe.name} ({reading}, C {probe.c:g}, fitted on {probe.fitted_on}):")
        shipped(probe, normans, "Normans, retrieved chunks")
        _, comb = Fit(train + bundled, reading).held_out(bundled)
        folded = cell(auroc(comb, labels_of(bundled)))
        print(f"- bundled, out of fold in the shipped fit's setting: probe + signals {folded}")
        if args.baseline:
            versus(probe, load_probe(args.baseline), normans, f"Normans, against {args.baseline.name}")
        print()
    if args.half:
        halves(normans, args.half, fitted_half=1)
        print()
    if not args.skip_layers:
        pairs = [tuple(int(part) for part in text.split("+")) for text in args.pair]
        layer_table(train, bundled, normans, call_sets, pairs, args.layer)
        print()
    if args.curve_layer is not None:
        learning_curve(train, normans, Reading(call_sets[0], (args.curve_layer,)), (50, 200, 400))


if __name__ == "__main__":
    main()
