"""eval-suite: scores per set and per style from one run's rows, suite files, and resuming a reading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_guard.config import load_config
from rag_guard.errors import ConfigError
from rag_guard.evaluation import suite as suite_module
from rag_guard.evaluation.evaluate import EvalReport, EvalRow
from rag_guard.evaluation.suite import expand, load_suite, run_suite
from rag_guard.evaluation.suite_scores import ScoredRow, mean_gain_interval, set_score, style_scores
from rag_guard.judging.decision import Decision
from rag_guard.judging.signals import Signals
from tests.fakes import report_of


def row(answerable: bool, verdict: float, extract: float, p: float | None) -> ScoredRow:
    return ScoredRow(answerable=answerable, p_sufficient=p, signals=Signals(verdict=verdict, extract=extract))


# The verdict ranks one unanswerable question above an answerable one; the answer start fixes it.
ROWS = [row(True, 0.9, 0.9, 0.9), row(True, 0.6, 0.9, 0.8), row(False, 0.7, 0.1, 0.2), row(False, 0.1, 0.5, 0.1)]


def test_every_reading_is_scored_from_the_same_rows():
    score = set_score("a", "squad", ROWS)
    assert (score.n, score.answerable) == (4, 2)
    assert score.auroc["verdict"] == pytest.approx(0.75)
    assert score.auroc["verdict + answer start"] == pytest.approx(1.0)
    assert score.auroc["configured"] == pytest.approx(1.0)


def test_a_question_without_a_probability_scores_as_refused():
    refused = [*ROWS, ScoredRow(answerable=True, p_sufficient=None, signals=None)]
    assert set_score("a", "squad", refused).auroc["configured"] == pytest.approx(4 / 6)


def test_styles_report_the_mean_and_the_worst_set():
    worse = [row(True, 0.9, 0.9, 0.4), row(False, 0.1, 0.1, 0.6), row(True, 0.8, 0.8, 0.9), row(False, 0.2, 0.2, 0.1)]
    sets = {"a": ("squad", ROWS), "b": ("squad", worse), "c": ("hand-written", ROWS)}
    scored = [set_score(name, style, rows) for name, (style, rows) in sets.items()]
    styles = style_scores(scored, {name: rows for name, (_, rows) in sets.items()})
    squad = next(s for s in styles if s.style == "squad")
    assert squad.sets == 2
    assert squad.mean["configured"] == pytest.approx((1.0 + 0.75) / 2)
    assert squad.worst["configured"] == pytest.approx(0.75)


def test_the_gain_interval_brackets_the_observed_gain_and_is_above_zero_for_a_clear_win():
    clear = [row(i % 2 == 0, 0.5, 0.5, 0.9 if i % 2 == 0 else 0.1) for i in range(40)]  # base is a coin toss
    observed, low, high = mean_gain_interval([clear, clear])
    assert observed == pytest.approx(0.5)
    assert 0 < low <= observed <= high


def write_suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_suite_file_expands_variables_and_resolves_paths_against_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_ROOT", "/data/bench")
    path = write_suite(
        tmp_path,
        "sets:\n  - {name: a, style: squad, corpus: '${BENCH_ROOT}/corpus', questions: q.jsonl}\n"
        "  - {name: b, style: squad, corpus: '${MISSING_ROOT:-here}/c', questions: q.jsonl}\n",
    )
    a, b = load_suite(path).sets
    assert a.corpus == Path("/data/bench/corpus") and a.questions == tmp_path / "q.jsonl"
    assert b.corpus == tmp_path / "here/c"


def test_a_bad_suite_file_names_the_entry(tmp_path):
    path = write_suite(tmp_path, "sets:\n  - {name: a, style: squad, corpus: c, questions: q, limt: 3}\n")
    with pytest.raises(ConfigError, match=r"sets\.0\.limt"):
        load_suite(path)
    with pytest.raises(ConfigError, match=r"\$\{NOT_SET_ANYWHERE\}"):
        load_suite(
            write_suite(tmp_path, "sets:\n  - {name: a, style: s, corpus: '${NOT_SET_ANYWHERE}', questions: q}\n")
        )


def test_a_set_splits_by_article_drops_given_passages_and_samples_each_article(tmp_path):
    lines = [
        {"question": f"q{i} {article}?", "answerable": i % 2 == 0, "article": article, "context": "given"}
        for article in ("Normans", "Oxygen")
        for i in range(10)
    ]
    (tmp_path / "q.jsonl").write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    path = write_suite(
        tmp_path,
        "sets:\n  - {name: fit, style: squad, corpus: c, questions: q.jsonl, split_by: article, "
        "retrieve: true, limit: 4}\n",
    )
    groups = dict(expand(load_suite(path).sets[0]))
    assert set(groups) == {"fit/Normans", "fit/Oxygen"}
    assert all(len(qs) == 4 and sum(q.answerable for q in qs) == 2 for qs in groups.values())
    assert all(q.context is None for qs in groups.values() for q in qs)


def fake_report(questions) -> EvalReport:
    rows = [
        EvalRow(
            question=q.question,
            answerable=q.answerable,
            kind=None,
            decision=Decision.ANSWER if q.answerable else Decision.REFUSE,
            p_sufficient=0.9 if q.answerable else 0.1,
            signals=Signals(verdict=0.6, extract=0.5),
            reason="",
            guard_s=0.1,
            sources=[],
        )
        for q in questions
    ]
    return report_of(rows)


def evaluator_of(report):
    """An `Evaluator` that judges nothing: each set's report is `report(questions)`."""

    class Fake:
        def __init__(self, settings, **_):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *_):
            pass

        def evaluate(self, corpus, questions, **_):
            return report(questions)

    return Fake


def test_a_reading_resumes_where_it_stopped_and_refuses_to_mix_configurations(tmp_path, monkeypatch):
    (tmp_path / "q.jsonl").write_text(
        '{"question": "a?", "answerable": true}\n{"question": "b?", "answerable": false}\n', encoding="utf-8"
    )
    suite = load_suite(write_suite(tmp_path, "sets:\n  - {name: one, style: s, corpus: c, questions: q.jsonl}\n"))
    judged: list[str] = []
    monkeypatch.setattr(suite_module, "Evaluator", evaluator_of(lambda qs: judged.append("x") or fake_report(qs)))
    settings = load_config(Path(__file__).resolve().parents[3] / "config.yaml", env={})

    first = run_suite(settings, suite, tmp_path / "out")
    second = run_suite(settings, suite, tmp_path / "out")
    assert judged == ["x"]  # the second run read the saved set
    assert first == second and first.sets[0].auroc["configured"] == 1.0
    other = settings.model_copy(update={"guard": settings.guard.model_copy(update={"answer_threshold": 0.9})})
    with pytest.raises(ConfigError, match="another configuration"):
        run_suite(other, suite, tmp_path / "out")


def test_a_reading_goes_on_when_only_how_replies_are_written_changed(tmp_path, monkeypatch):
    (tmp_path / "q.jsonl").write_text('{"question": "a?", "answerable": true}\n', encoding="utf-8")
    suite = load_suite(write_suite(tmp_path, "sets:\n  - {name: one, style: s, corpus: c, questions: q.jsonl}\n"))
    monkeypatch.setattr(suite_module, "Evaluator", evaluator_of(fake_report))
    settings = load_config(Path(__file__).resolve().parents[3] / "config.yaml", env={})
    run_suite(settings, suite, tmp_path / "out")
    replies = settings.guard.model_copy(update={"answer_style": "free", "grounding": False})
    run_suite(settings.model_copy(update={"guard": replies}), suite, tmp_path / "out")


def test_a_reading_refuses_to_go_on_under_another_probe_file_of_the_same_name(tmp_path, monkeypatch):
    (tmp_path / "q.jsonl").write_text('{"question": "a?", "answerable": true}\n', encoding="utf-8")
    suite = load_suite(write_suite(tmp_path, "sets:\n  - {name: one, style: s, corpus: c, questions: q.jsonl}\n"))
    monkeypatch.setattr(suite_module, "Evaluator", evaluator_of(fake_report))
    settings = load_config(Path(__file__).resolve().parents[3] / "config.yaml", env={})
    probe = tmp_path / "probe.json"
    probe.write_text('{"weights": "first fit"}', encoding="utf-8")
    settings = settings.model_copy(update={"guard": settings.guard.model_copy(update={"probe": probe})})
    run_suite(settings, suite, tmp_path / "out")
    probe.write_text('{"weights": "fitted again"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="another configuration"):
        run_suite(settings, suite, tmp_path / "out")


def test_the_command_prints_each_set_and_each_style_s_mean_and_worst(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rag_guard.cli import app

    (tmp_path / "q.jsonl").write_text(
        '{"question": "a?", "answerable": true}\n{"question": "b?", "answerable": false}\n', encoding="utf-8"
    )
    path = write_suite(tmp_path, "sets:\n  - {name: one, style: squad, corpus: c, questions: q.jsonl}\n")
    monkeypatch.setattr(suite_module, "Evaluator", evaluator_of(fake_report))
    config = Path(__file__).resolve().parents[3] / "config.yaml"
    result = CliRunner().invoke(app, ["eval-suite", str(path), "--out", str(tmp_path / "out"), "-c", str(config)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "AUROC per set" in text and "Per style: mean (worst)" in text and "1.000 (1.000)" in text
