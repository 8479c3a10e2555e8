"""`rag-guard eval --report DIR`: three plots and one HTML page that show how the guard behaved.

- reliability.png: per probability bin, the share of answerable questions against the mean P(sufficient);
  a calibrated guard follows the diagonal.
- risk_coverage.png: answering the top-scored questions first, the share of unanswerable ones among those
  answered (risk) against the share of all questions answered; lower is better. (The page's "coverage" is
  another figure: the share of answerable questions answered; the plot avoids the word.)
- score_histogram.png: P(sufficient) of answerable and of unanswerable questions; the less they overlap,
  the better the guard separates them.
Every plot marks the configured thresholds.
- index.html: every question with its verdict; for answered ones, the answer with each token coloured by
  its probability, the answer's joint probability and perplexity, and how it scored against the gold
  answer; for clarified ones, the message and whether it names the labelled missing part.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from rag_guard.evaluation.evaluate import EvalReport, EvalRow

PLOTS = ("reliability.png", "risk_coverage.png", "score_histogram.png")


def write_report(result: EvalReport, directory: Path, title: str) -> list[Path]:
    """Write the plots and index.html into `directory` (created if needed); return the files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    directory.mkdir(parents=True, exist_ok=True)
    scores = np.array([row.p_sufficient or 0.0 for row in result.rows])
    labels = np.array([row.answerable for row in result.rows])
    written = [
        _reliability(scores, labels, directory / PLOTS[0], result),
        _risk_coverage(scores, labels, directory / PLOTS[1], result),
        _histogram(scores, labels, directory / PLOTS[2], result),
    ]
    page = directory / "index.html"
    page.write_text(render_html(result, title), encoding="utf-8")
    return [*written, page]


def _figure():  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5.5, 4.2), dpi=110)


def _save(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _thresholds(ax, result: EvalReport) -> None:  # type: ignore[no-untyped-def]
    """The answer and clarify thresholds as dotted lines at their P(sufficient) on the x axis."""
    ax.axvline(
        result.answer_threshold, color="green", linestyle=":", label=f"answer threshold {result.answer_threshold}"
    )
    ax.axvline(
        result.clarify_threshold, color="orange", linestyle=":", label=f"clarify threshold {result.clarify_threshold}"
    )


def _reliability(scores: np.ndarray, labels: np.ndarray, path: Path, result: EvalReport, bins: int = 10) -> Path:
    fig, ax = _figure()
    which = np.minimum((scores * bins).astype(int), bins - 1)
    centres, observed, counts = [], [], []
    for b in range(bins):
        inside = which == b
        if inside.any():
            centres.append(scores[inside].mean())
            observed.append(labels[inside].mean())
            counts.append(int(inside.sum()))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated")
    ax.plot(centres, observed, marker="o", label="guard")
    for x, y, n in zip(centres, observed, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    _thresholds(ax, result)
    ax.set(xlabel="mean P(sufficient) in bin", ylabel="share answerable", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Reliability (numbers: questions per bin)")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def _risk_coverage(scores: np.ndarray, labels: np.ndarray, path: Path, result: EvalReport) -> Path:
    order = np.argsort(-scores, kind="stable")
    answered = np.arange(1, len(order) + 1)
    wrong = np.cumsum(~labels[order])
    fig, ax = _figure()
    ax.plot(answered / len(order), wrong / answered, drawstyle="steps-post")
    ax.axhline((~labels).mean(), linestyle="--", color="grey", label="answering everything")
    for threshold, colour in ((result.answer_threshold, "green"), (result.clarify_threshold, "orange")):
        share = float((scores >= threshold).mean())
        ax.axvline(share, color=colour, linestyle=":", label=f"P(sufficient) >= {threshold}: {share:.0%} answered")
    ax.set(xlabel="share of all questions answered", ylabel="risk (share answered wrongly)", xlim=(0, 1))
    ax.set_ylim(bottom=0)
    ax.set_title("Risk by share answered, best-scored first")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def _histogram(scores: np.ndarray, labels: np.ndarray, path: Path, result: EvalReport) -> Path:
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure()
    edges = np.linspace(0, 1, 21)
    ax.hist(scores[labels], bins=edges, alpha=0.6, label="answerable")
    ax.hist(scores[~labels], bins=edges, alpha=0.6, label="unanswerable")
    _thresholds(ax, result)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # questions come whole
    ax.set(xlabel="P(sufficient)", ylabel="questions")
    ax.set_title("Scores by label")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


# --- the page -------------------------------------------------------------------------------------------


def _token_colour(logprob: float) -> str:
    """Red for unlikely tokens through yellow to green for certain ones."""
    p = math.exp(logprob)
    return f"hsl({round(120 * p)}, 75%, 82%)"


def _answer_html(row: EvalRow) -> str:
    if row.message is not None:
        return f"<div class=answer>{html.escape(row.message)}</div>{_scored_html(row)}"
    if row.answer is None:
        return ""
    if not row.answer_tokens:
        return f"<div class=answer>{html.escape(row.answer)}</div>{_scored_html(row)}"
    spans = "".join(
        f'<span style="background:{_token_colour(t.logprob)}" title="p={math.exp(t.logprob):.3f}">'
        f"{html.escape(t.token)}</span>"
        for t in row.answer_tokens
    )
    confidence = f"joint probability {math.exp(row.joint_logprob or 0):.2e}, perplexity {row.perplexity:.2f}"
    return f"<div class=answer>{spans}</div><div class=conf>{confidence}</div>{_scored_html(row)}"


def _scored_html(row: EvalRow) -> str:
    scored = row.scored
    if scored is None:
        return ""
    marks = []
    if scored.right is not None:
        marks.append(f"{'right' if scored.right else 'wrong'}* (F1 {scored.f1:.2f})")
    if scored.cited is False:
        marks.append("cites no passage")
    if scored.names_missing is not None:
        marks.append("names the missing part" if scored.names_missing else "does not name the missing part")
    return f"<div class=conf>{html.escape('; '.join(marks))}</div>" if marks else ""


def _label(row: EvalRow) -> str:
    label = "answerable" if row.answerable else "unanswerable"
    return html.escape(f"{label} ({row.kind})" if row.kind else label)


def _sources(row: EvalRow) -> str:
    """Each passage as its file and chunk number, in the order the judge saw them ([1], [2], ...)."""
    chunks = row.chunks or [None] * len(row.sources)
    return ", ".join(
        f"[{i}] {source}" + (f" #{chunk}" if chunk is not None else "")
        for i, (source, chunk) in enumerate(zip(row.sources, chunks, strict=False), start=1)
    )


GLOSSARY = {
    "AUROC": "the chance that a random answerable question scores above a random unanswerable one "
    "(1 separates them perfectly, 0.5 is a coin toss)",
    "ECE": "expected calibration error: how far P(sufficient) is from the share of answerable questions "
    "at that score, averaged over ten bins (0 is perfectly calibrated)",
    "answered precision": "of the questions answered, the share that are answerable",
    "coverage": "of the answerable questions, the share answered (the only meaning of coverage on this page)",
    "right*": "an answer is right when every word of one acceptable gold answer appears in it, in any order "
    "(SQuAD's normalisation); an answer to an unanswerable question is wrong whatever it says",
    "F1": "SQuAD's token F1 between the answer and the closest gold answer: word overlap, 1 for identical",
    "joint probability": "the product of the answer's token probabilities: how likely the model found the whole answer",
    "perplexity": "exp of the mean negative log-probability per answer token: 1 when every token was certain, "
    "higher when the model hesitated",
    "#n": "a source's chunk number within its file",
}


def render_html(result: EvalReport, title: str) -> str:
    figures = [
        ("n", result.n),
        ("AUROC", result.auroc),
        ("ECE", result.ece),
        ("answered precision", result.answered_precision),
        ("coverage (answerable questions answered)", result.coverage),
        ("unanswerable refused", result.unanswerable_refusal_rate),
        ("unanswerable answered", result.unanswerable_answered_rate),
        ("guard latency, mean s", result.guard_latency_s_mean),
        ("answers right*", result.answers_right),
        ("answer F1, mean", result.answer_f1_mean),
        ("clarifying messages naming the missing part", result.missing_named),
    ]
    summary = "".join(
        f"<tr><th>{name}</th><td>{'n/a' if value is None else round(value, 3)}</td></tr>" for name, value in figures
    )
    rows = "".join(
        f"<tr class={row.decision.value}><td>{html.escape(row.question)}{_answer_html(row)}</td>"
        f"<td>{_label(row)}</td>"
        f"<td>{row.decision.value}</td>"
        f"<td>{'n/a' if row.p_sufficient is None else f'{row.p_sufficient:.3f}'}</td>"
        f"<td class=small>{html.escape(row.reason)}<br>{html.escape(_sources(row))}</td></tr>"
        for row in result.rows
    )
    plots = "".join(f'<img src="{name}" alt="{name}">' for name in PLOTS)
    glossary = "".join(f"<dt>{html.escape(term)}</dt><dd>{html.escape(say)}</dd>" for term, say in GLOSSARY.items())
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }}
tr.answer td:nth-child(3) {{ color: #17803d; }} tr.clarify td:nth-child(3) {{ color: #a86200; }}
tr.refuse td:nth-child(3) {{ color: #b42318; }}
.answer {{ margin-top: 6px; font-family: ui-monospace, monospace; white-space: pre-wrap; }}
.conf, .small {{ font-size: 0.85em; color: #555; }} img {{ max-width: 32%; margin-right: 1%; }}
dt {{ font-weight: bold; margin-top: 4px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Thresholds: answer at P(sufficient) &ge; {result.answer_threshold}, clarify at &ge; {result.clarify_threshold}
(the dotted lines on the plots).
Answer tokens are coloured by their probability (red: unlikely, green: certain); hover for the value.</p>
<table>{summary}</table>
<p>{plots}</p>
<h2>Glossary</h2>
<dl>{glossary}</dl>
<table><tr><th>question (and answer)</th><th>label</th><th>decision</th><th>P(sufficient)</th><th>why</th></tr>
{rows}</table>
</body></html>
"""
