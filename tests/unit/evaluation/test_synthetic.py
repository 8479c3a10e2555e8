from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage

from rag_guard.evaluation.synthetic import (
    answered_by,
    answered_elsewhere,
    read_written,
    spread_sample,
    write_questions,
)
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from tests.fakes import FakeChatModel, FixedRetriever

VASA = (
    "The Vasa was a Swedish warship built between 1626 and 1628. She sank on her maiden voyage on 10 August 1628, "
    "less than a nautical mile into the voyage, and was raised in 1961."
)
WRITTEN = "ANSWERED: When did the Vasa sink?\nANSWER: 10 August 1628\nNOT ANSWERED: Who was the captain of the Vasa?"


def test_the_two_questions_are_read_with_the_answer_found_in_the_passage():
    written = read_written(WRITTEN, VASA)
    assert written.answered == "When did the Vasa sink?" and written.answer == "10 August 1628"
    assert written.near_miss == "Who was the captain of the Vasa?"


def test_an_answer_the_passage_does_not_hold_drops_the_answered_question_but_keeps_the_near_miss():
    written = read_written(WRITTEN.replace("10 August 1628", "in a storm off Gotland"), VASA)
    assert written.answered is None and written.answer is None
    assert written.near_miss == "Who was the captain of the Vasa?"


def test_questions_that_are_no_questions_or_lean_on_the_passage_are_dropped():
    reply = "ANSWERED: When did it sink?\nANSWER: 1628\nNOT ANSWERED: What does the passage say about guns?"
    assert read_written(reply, VASA) == read_written("nothing of the form", VASA)
    assert read_written("ANSWERED: The Vasa sank in 1628.\nANSWER: 1628", VASA).answered is None


def test_an_extraction_counts_as_an_answer_only_when_a_passage_holds_it_word_for_word():
    passages = [Document(page_content=VASA)]
    assert answered_by("10 August 1628.", passages)
    assert not answered_by("unanswerable", passages)
    assert not answered_by("Captain Söfring Hansson", passages)


def test_the_sample_takes_from_each_file_in_turn_and_skips_scraps():
    chunks = [Document(id=f"a{i}", page_content=VASA, metadata={"source": "a.md"}) for i in range(5)]
    chunks += [Document(id="b0", page_content=VASA, metadata={"source": "b.md"})]
    chunks += [Document(id="c0", page_content="# Title", metadata={"source": "c.md"})]
    picked = spread_sample(chunks, 3)
    assert len(picked) == 3
    assert sorted(chunk.metadata["source"] for chunk in picked) == ["a.md", "a.md", "b.md"]


def test_each_chunk_gives_a_labelled_question_and_near_miss_grouped_by_its_file():
    chunks = [
        Document(id="vasa", page_content=VASA, metadata={"source": "vasa.md"}),
        Document(id="junk", page_content=VASA, metadata={"source": "junk.md"}),
    ]
    model = FakeChatModel(reply=lambda messages, kwargs: (WRITTEN if "Vasa" in messages[-1].text else "", None))
    chunks[1] = Document(id="junk", page_content="No ships here. " * 10, metadata={"source": "junk.md"})
    questions = write_questions(chunks, model, lambda n: {"max_tokens": n})
    assert [(q.question, q.answerable, q.kind, q.group) for q in questions] == [
        ("When did the Vasa sink?", True, "answerable", "vasa.md"),
        ("Who was the captain of the Vasa?", False, "near_miss", "vasa.md"),
    ]


def test_a_near_miss_is_answered_elsewhere_when_the_extraction_quotes_a_retrieved_passage():
    captain = Document(page_content="Söfring Hansson was the captain of the Vasa.")

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> tuple[str, Any]:
        assert EXTRACT_INSTRUCTION in messages[-1].text
        return ("Söfring Hansson" if "Söfring" in messages[-1].text else "unanswerable"), None

    model, options = FakeChatModel(reply=reply), lambda n: {"max_tokens": n}
    question = "Who was the captain of the Vasa?"
    assert answered_elsewhere(question, model, FixedRetriever(documents=[captain]), options)
    assert not answered_elsewhere(question, model, FixedRetriever(documents=[Document(page_content=VASA)]), options)


SHIPS = ["Vasa", "Mary Rose", "Batavia", "Kronan", "Mars", "Elefanten", "Victory", "Wasa II"]


def _calibrate_on_ships(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt_judging: bool = False) -> Result:
    """`calibrate --synthetic --write` on one note per ship, with a fake model that writes a question on the
    guns and a near miss on the builder from each, sure of the guns and unsure of the builders."""
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from typer.testing import CliRunner

    from rag_guard import factory
    from rag_guard.cli import app
    from rag_guard.config import load_config
    from rag_guard.store import ChromaSettings, ingest, open_store
    from tests.fakes import openai_logprobs

    (tmp_path / "notes").mkdir()
    for ship in SHIPS:
        text = f"The {ship} was a warship. The {ship} carried 64 guns on two decks and sank in a storm. " * 2
        text += "Henrik Hybertsson built the Vasa."  # in every file, so whatever is retrieved holds it
        (tmp_path / "notes" / f"{ship}.md").write_text(text, encoding="utf-8")
    chroma = ChromaSettings(persist_directory=tmp_path / "chroma", collection="ships")
    ingest(open_store(chroma, DeterministicFakeEmbedding(size=8), create=True), tmp_path / "notes", chroma)
    config = tmp_path / "config.yaml"
    config.write_text(f"chroma:\n  persist_directory: {tmp_path / 'chroma'}\n", encoding="utf-8")

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> tuple[str, Any]:
        last = messages[-1].text
        asked = last.rsplit("Question:", 1)[-1]
        if kwargs.get("max_tokens") == 1:  # the guard: sure of the guns, unsure of the builders but the Vasa's
            if interrupt_judging:
                raise KeyboardInterrupt
            p = 0.9 if "guns" in asked else 0.7 if "Vasa" in asked else 0.2
            return ("True" if p >= 0.5 else "False"), openai_logprobs({"True": p, "False": 1 - p})
        if EXTRACT_INSTRUCTION in last:
            return ("Henrik Hybertsson" if "Vasa" in asked else "unanswerable"), None
        ship = next(ship for ship in SHIPS if f"The {ship} was" in last)
        return (
            f"ANSWERED: How many guns did the {ship} carry?\nANSWER: 64 guns\nNOT ANSWERED: Who built the {ship}?",
            None,
        )

    model = FakeChatModel(reply=reply)
    models = factory.Models(answerer=model, judge=model, judge_settings=load_config(config, env={}).model)
    monkeypatch.setattr(factory, "build_models", lambda settings: models)
    monkeypatch.setattr(factory, "build_embeddings", lambda *args: DeterministicFakeEmbedding(size=8))
    args = ["--synthetic", "--collection", "ships", "--chunks", "8", "--questions", str(tmp_path / "written.jsonl")]
    return CliRunner().invoke(
        app, ["calibrate", *args, "--write", "--target-precision", "0.9", "--config", str(config)]
    )


def test_calibrate_synthetic_writes_the_questions_file_and_thresholds_that_separate_them(tmp_path, monkeypatch):
    from rag_guard.config import load_config
    from rag_guard.evaluation.questions import load_questions
    from rag_guard.judging.signals import Signals

    result = _calibrate_on_ships(tmp_path, monkeypatch)

    assert result.exit_code == 0, result.output
    written = tmp_path / "written.jsonl"
    questions = load_questions(written)
    assert sum(q.answerable for q in questions) == 8
    assert [q.question for q in questions if not q.answerable] == [
        f"Who built the {ship}?" for ship in sorted(SHIPS) if ship != "Vasa"
    ]  # the Vasa's near miss scored in the clarify band and the collection answers it: left out
    said = " ".join(result.output.split())
    assert str(written) in said and "left out: 1" in said
    guard = load_config(tmp_path / "config.yaml", env={}).guard
    assert guard.calibration is not None and guard.calibration.fitted_on == "written.jsonl"
    calibrated = {p: guard.calibration.apply(Signals(verdict=p).features()) for p in (0.2, 0.9)}
    assert calibrated[0.2] < guard.answer_threshold <= calibrated[0.9]  # answers the guns, not the builders


def test_calibrate_synthetic_stopped_while_judging_keeps_the_written_questions(tmp_path, monkeypatch):
    from rag_guard.config import load_config
    from rag_guard.evaluation.questions import load_questions

    result = _calibrate_on_ships(tmp_path, monkeypatch, interrupt_judging=True)

    assert result.exit_code == 130  # Ctrl-C while the guard judges

    questions = load_questions(tmp_path / "written.jsonl")
    assert len(questions) == 16 and sum(q.answerable for q in questions) == 8  # every near miss, none checked yet
    assert load_config(tmp_path / "config.yaml", env={}).guard.calibration is None


def test_calibrate_synthetic_refuses_a_corpus_folder_and_says_to_ingest_it(tmp_path):
    from typer.testing import CliRunner

    from rag_guard.cli import app

    result = CliRunner().invoke(app, ["calibrate", "--synthetic", "--corpus", str(tmp_path)])
    assert result.exit_code == 2
    assert "rag-guard ingest" in " ".join(result.output.split())
