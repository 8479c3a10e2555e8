"""Bad input at the command line: one clear message, a non-zero exit, no traceback, and no model loaded; an outage
is told apart from a refusal by its message and exit code."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag_guard.cli import app
from rag_guard.judging import SufficiencyGuard
from rag_guard.pipeline import GuardedRAG


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ("caf\udce9 au lait?", "not valid UTF-8"),
        ("why " * 1500, "keep it under 4000"),
    ],
)
def test_unusable_question_exits_2_with_the_reason(question, message):
    result = run("ask", question)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("guard: {answer_threshold: 0.7", "not valid YAML"),
        ("guard:\n  answer_threshold: 1.5\n", "guard.answer_threshold"),
        ("guard:\n  answer_threshold: 0.3\n  clarify_threshold: 0.6\n", "must not exceed answer_threshold"),
        ("guard:\n  fail_mode: answer\n", "'refuse' or 'error'"),
    ],
)
def test_broken_config_exits_2_with_the_reason(tmp_path, text, message):
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    result = run("ask", "What is oven spring?", "--config", str(config))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_missing_corpus_directory_exits_non_zero_and_names_it(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"chroma:\n  persist_directory: {tmp_path / 'chroma'}\n", encoding="utf-8")
    result = run("ingest", "--config", str(config), "--corpus", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "nowhere" in result.output
    assert "does not exist" in result.output


def fit_probe_with(tmp_path, config: str, question: str, *extra: str):
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    (tmp_path / "q.jsonl").write_text(question + "\n", encoding="utf-8")
    args = ["fit-probe", "--questions", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "p.json")]
    return run(*args, *extra, "--config", str(tmp_path / "config.yaml"))


def test_fit_probe_with_a_server_judge_says_only_the_embedded_model_has_hidden_states(tmp_path):
    server = "model:\n  provider: ollama\n  name: qwen2.5:7b\n"
    result = fit_probe_with(tmp_path, server, '{"question": "Who?", "answerable": true, "context": "Ann did."}')
    assert result.exit_code == 2
    assert "embedded model only" in result.output and "ollama" in result.output
    assert not (tmp_path / "p.json").exists()


def test_fit_probe_names_a_question_without_context_when_no_corpus_is_given(tmp_path):
    result = fit_probe_with(tmp_path, "{}\n", '{"question": "Who built it?", "answerable": true}', "--layers", "3")
    assert result.exit_code != 0
    assert "Who built it?" in result.output and "--corpus" in result.output


def test_fit_probe_rejects_a_layer_that_is_not_a_number(tmp_path):
    result = CliRunner().invoke(
        app, ["fit-probe", "--questions", "q.jsonl", "--out", str(tmp_path / "p.json"), "--layers", "mid"]
    )
    assert result.exit_code == 2
    assert "not a layer" in result.output


def test_fit_probe_needs_questions_to_read_or_states_kept(tmp_path):
    result = CliRunner().invoke(app, ["fit-probe", "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 2
    assert "--features" in result.output


def test_fit_probe_on_kept_states_names_the_missing_features_file(tmp_path):
    result = run("fit-probe", "--features", str(tmp_path / "none.npz"), "--out", str(tmp_path / "p.json"))
    assert result.exit_code != 0
    assert "none.npz" in result.output and "eval-suite" in result.output


@pytest.mark.parametrize("calls", ["answer", "verdict+verdict", "verdict+"])
def test_fit_probe_rejects_calls_it_cannot_read(tmp_path, calls):
    args = ["fit-probe", "--questions", "q.jsonl", "--out", str(tmp_path / "p.json"), "--layers", "3"]
    result = CliRunner().invoke(app, [*args, "--calls", calls])
    assert result.exit_code == 2
    assert "is not a call" in result.output


def test_the_demo_table_keeps_readable_columns_when_printed_to_a_log(monkeypatch):
    import io

    from rich.console import Console

    from rag_guard.cli import commands, shared
    from rag_guard.judging import Verdict
    from rag_guard.judging.decision import Decision
    from rag_guard.reply.answers import GuardedAnswer

    log = io.StringIO()
    monkeypatch.setattr(shared, "out", Console(file=log))  # a file: not a terminal
    answer = "Voyager 2 was launched on 20 August 1977 from Cape Canaveral aboard a Titan IIIE rocket [1]."
    verdict = Verdict(decision=Decision.ANSWER, p_sufficient=0.9, reason="p_sufficient 0.900")
    result = GuardedAnswer(
        question="When was Voyager 2 launched?",
        decision=Decision.ANSWER,
        p_sufficient=0.9,
        verdict=verdict,
        answer=answer,
    )
    shared.print_wide(commands._table([result]))
    assert "20 August 1977 from Cape Canaveral" in log.getvalue()  # not cut into 15-character lines
    assert max(len(line) for line in log.getvalue().splitlines()) <= shared.LOG_WIDTH


@pytest.mark.parametrize("as_json", [False, True])
def test_ask_exits_3_and_prints_what_failed_when_the_judge_is_down(monkeypatch, as_json):
    from rag_guard.cli import commands
    from tests.fakes import DOCS, FakeChatModel, FixedRetriever

    def down(messages, kwargs):
        raise ConnectionError("connection refused")

    model = FakeChatModel(reply=down)
    guard = SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3)
    rag = GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=model)
    monkeypatch.setattr(commands, "build_pipeline", lambda settings: rag)
    result = run("ask", "When did Voyager 2 launch?", *(["--json"] if as_json else []))
    assert result.exit_code == commands.OUTAGE_EXIT_CODE == 3
    assert "do not appear to contain" not in result.stdout
    if as_json:
        assert json.loads(result.stdout)["error"]["kind"] == "unreachable"
    else:
        assert "What failed:" in result.stdout


def test_ask_exits_0_when_the_documents_do_not_answer(monkeypatch):
    from rag_guard.cli import commands
    from tests.fakes import pipeline

    monkeypatch.setattr(commands, "build_pipeline", lambda settings: pipeline(0.05))
    result = run("ask", "When did Voyager 2 launch?")
    assert result.exit_code == 0
    assert "do not appear to contain" in result.stdout


def test_the_demo_table_gives_each_reply_its_rule_in_plain_words():
    from rag_guard.cli.commands import short_reason
    from tests.fakes import DOCS, FakeChatModel, FixedRetriever, pipeline

    def down(messages, kwargs):
        raise ConnectionError("connection refused")

    model = FakeChatModel(reply=down)
    outage = GuardedRAG(
        retriever=FixedRetriever(documents=DOCS),
        guard=SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3),
        answerer=model,
    )
    assert short_reason(pipeline(0.9).invoke("When did Voyager 2 launch?")) == "the passages appear to state the answer"
    assert (
        short_reason(pipeline(0.05).invoke("When did Voyager 2 launch?")) == "the passages do not appear to answer it"
    )
    assert short_reason(pipeline(0.45).invoke("When did Voyager 2 launch?")).startswith("the passages may answer only")
    assert short_reason(outage.invoke("When did Voyager 2 launch?")) == "could not judge (unreachable)"


def test_collections_delete_asks_first_and_removes_only_the_one_named(tmp_path):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from rag_guard.store import ChromaSettings, ingest, open_store

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n.md").write_text("A short note on tides. " * 5, encoding="utf-8")
    for name in ("rag_guard", "notes"):
        chroma = ChromaSettings(persist_directory=tmp_path / "chroma", collection=name)
        ingest(open_store(chroma, DeterministicFakeEmbedding(size=8), create=True), tmp_path / "notes", chroma)
    config = tmp_path / "config.yaml"
    config.write_text(f"chroma:\n  persist_directory: {tmp_path / 'chroma'}\n", encoding="utf-8")

    kept = CliRunner().invoke(app, ["collections", "--config", str(config), "--delete", "notes"], input="n\n")
    assert kept.exit_code == 1 and "Delete the collection 'notes'" in kept.output
    deleted = run("collections", "--config", str(config), "--delete", "notes", "--yes")
    assert deleted.exit_code == 0 and "Deleted the collection 'notes'" in deleted.output
    from rag_guard.store import collection_summaries

    assert [summary.name for summary in collection_summaries(chroma)] == ["rag_guard"]
    again = run("collections", "--config", str(config), "--delete", "notes", "--yes")
    assert again.exit_code == 1 and "'notes' does not exist" in " ".join(again.output.split())


def test_asking_a_collection_that_does_not_exist_names_those_that_do_and_creates_none(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from langchain_core.embeddings import DeterministicFakeEmbedding

    from rag_guard import factory
    from rag_guard.store import ChromaSettings, collection_summaries, ingest, open_store
    from tests.fakes import judge_then_answer

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n.md").write_text("A short note on tides. " * 5, encoding="utf-8")
    chroma = ChromaSettings(persist_directory=tmp_path / "chroma", collection="notes")
    ingest(open_store(chroma, DeterministicFakeEmbedding(size=8), create=True), tmp_path / "notes", chroma)
    config = tmp_path / "config.yaml"
    config.write_text(f"chroma:\n  persist_directory: {tmp_path / 'chroma'}\n", encoding="utf-8")
    judge = judge_then_answer(0.9)
    monkeypatch.setattr(factory, "build_models", lambda settings: SimpleNamespace(judge=judge, answerer=judge))
    monkeypatch.setattr(factory, "load_models", lambda *models: None)
    monkeypatch.setattr(factory, "build_embeddings", lambda *args: DeterministicFakeEmbedding(size=8))
    monkeypatch.setattr(factory, "build_guard", lambda settings, j, **fields: SufficiencyGuard(judge=j))

    result = run("ask", "When is high tide?", "--config", str(config), "--collection", "doesnotexist")
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "'doesnotexist' does not exist" in said and "it holds 'notes'" in said
    assert [summary.name for summary in collection_summaries(chroma)] == ["notes"]
