from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage

from rag_guard.evaluation.synthetic import (
    read_written,
    retrieved_with_answer,
    spread_sample,
    write_questions,
)
from tests.fakes import FakeChatModel, FixedRetriever

VASA = (
    "The Vasa was a Swedish warship built between 1626 and 1628. She sank on her maiden voyage on 10 August 1628, "
    "less than a nautical mile into the voyage, and was raised in 1961."
)
WRITTEN = "ANSWERED: When did the Vasa sink?\nANSWER: 10 August 1628"


def test_the_question_is_read_with_its_answer_found_in_the_passage():
    written = read_written(WRITTEN, VASA)
    assert written is not None
    assert written.question == "When did the Vasa sink?" and written.answer == "10 August 1628"


def test_an_answer_the_passage_does_not_hold_drops_the_question():
    assert read_written(WRITTEN.replace("10 August 1628", "in a storm off Gotland"), VASA) is None


def test_an_answer_that_is_a_sentence_or_repeats_the_question_drops_the_question():
    sentence = "She sank on her maiden voyage on 10 August 1628, less than a nautical mile into the voyage"
    assert read_written(f"ANSWERED: What happened to the Vasa?\nANSWER: {sentence}", VASA) is None
    assert read_written("ANSWERED: What was the Vasa, a Swedish warship?\nANSWER: Swedish warship", VASA) is None


def test_questions_that_are_no_questions_or_lean_on_the_passage_are_dropped():
    assert read_written("ANSWERED: When did it sink?\nANSWER: 1628", VASA) is None
    assert read_written("ANSWERED: When does the passage say she sank?\nANSWER: 1628", VASA) is None
    assert read_written("ANSWERED: When did this ship sink?\nANSWER: 1628", VASA) is None
    assert read_written("ANSWERED: The Vasa sank in 1628.\nANSWER: 1628", VASA) is None
    assert read_written("nothing of the form", VASA) is None


def test_the_sample_takes_from_each_file_in_turn_and_skips_scraps():
    chunks = [Document(id=f"a{i}", page_content=VASA, metadata={"source": "a.md"}) for i in range(5)]
    chunks += [Document(id="b0", page_content=VASA, metadata={"source": "b.md"})]
    chunks += [Document(id="c0", page_content="# Title", metadata={"source": "c.md"})]
    picked = spread_sample(chunks, 3)
    assert len(picked) == 3
    assert sorted(chunk.metadata["source"] for chunk in picked) == ["a.md", "a.md", "b.md"]


def test_each_written_question_is_labelled_answerable_and_again_with_its_answer_withheld():
    chunks = [
        Document(id="vasa", page_content=VASA, metadata={"source": "vasa.md"}),
        Document(id="junk", page_content="No ships here. " * 10, metadata={"source": "junk.md"}),
    ]
    model = FakeChatModel(reply=lambda messages, kwargs: (WRITTEN if "Vasa" in messages[-1].text else "", None))
    questions = write_questions(chunks, model, lambda n: {"max_tokens": n})
    assert [(q.question, q.answerable, q.kind, q.withhold, q.group) for q in questions] == [
        ("When did the Vasa sink?", True, "answerable", None, "vasa.md"),
        ("When did the Vasa sink?", False, "answer_withheld", "10 August 1628", "vasa.md"),
    ]


def test_a_question_whose_answer_the_collection_does_not_retrieve_is_dropped_with_its_twin():
    chunks = [Document(id="vasa", page_content=VASA, metadata={"source": "vasa.md"})]
    model = FakeChatModel(reply=lambda messages, kwargs: (WRITTEN, None))
    written = write_questions(chunks, model, lambda n: {"max_tokens": n})
    elsewhere = Document(page_content="The Vasa museum opened in 1990.", metadata={"source": "museum.md"})
    assert retrieved_with_answer(written, FixedRetriever(documents=[elsewhere, chunks[0]])) == written
    assert retrieved_with_answer(written, FixedRetriever(documents=[elsewhere])) == []


SHIPS = ["Vasa", "Mary Rose", "Batavia", "Kronan", "Mars", "Elefanten", "Victory", "Wasa II"]


def _calibrate_on_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt_judging: bool = False, sure_of: int = len(SHIPS)
) -> Result:
    """`calibrate --synthetic --write` on one note per ship, each with its own number of guns, with a fake model
    that asks each note how many guns its ship carried, and judges sure only when a passage states it (and,
    with `sure_of`, only for that many ships, the near misses scoring above the others)."""
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from typer.testing import CliRunner

    from rag_guard import factory
    from rag_guard.cli import app
    from rag_guard.config import load_config
    from rag_guard.store import ChromaSettings, ingest, open_store
    from tests.fakes import openai_logprobs

    (tmp_path / "notes").mkdir()
    for guns, ship in enumerate(SHIPS, start=20):
        text = f"The {ship} was a warship. The {ship} carried {guns} guns on two decks and sank in a storm. " * 2
        (tmp_path / "notes" / f"{ship}.md").write_text(text, encoding="utf-8")
    chroma = ChromaSettings(persist_directory=tmp_path / "chroma", collection="ships")
    ingest(open_store(chroma, DeterministicFakeEmbedding(size=8), create=True), tmp_path / "notes", chroma)
    config = tmp_path / "config.yaml"
    every_chunk = f"chroma:\n  persist_directory: {tmp_path / 'chroma'}\n  k: {len(SHIPS)}\n"
    config.write_text(every_chunk, encoding="utf-8")  # the fake embedding ranks at random: each answer found

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> tuple[str, Any]:
        last = messages[-1].text
        if kwargs.get("max_tokens") == 1:  # the guard: sure when a passage states the asked ship's guns
            if interrupt_judging:
                raise KeyboardInterrupt
            passages, asked = last.rsplit("Question:", 1)
            guns = next(guns for guns, ship in enumerate(SHIPS, start=20) if f"the {ship} carry" in asked)
            stated, sure = f"{guns} guns" in passages, guns - 20 < sure_of
            p = (0.9 if sure else 0.4) if stated else (0.2 if sure_of == len(SHIPS) else 0.5)
            return ("True" if p >= 0.5 else "False"), openai_logprobs({"True": p, "False": 1 - p})
        guns, ship = next((guns, ship) for guns, ship in enumerate(SHIPS, start=20) if f"The {ship} was" in last)
        return f"ANSWERED: How many guns did the {ship} carry?\nANSWER: {guns} guns", None

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
    assert [(q.answerable, q.withhold) for q in questions if q.question == "How many guns did the Vasa carry?"] == [
        (True, None),
        (False, "20 guns"),
    ]
    assert len(questions) == 16
    said = " ".join(result.output.split())
    assert str(written) in said and "would answer" not in said
    guard = load_config(tmp_path / "config.yaml", env={}).guard
    assert guard.calibration is not None and guard.calibration.fitted_on == "written.jsonl"
    calibrated = {p: guard.calibration.apply(Signals(verdict=p).features()) for p in (0.2, 0.9)}
    assert calibrated[0.2] < guard.answer_threshold <= calibrated[0.9]  # answers when the guns are stated


def test_thresholds_that_would_answer_few_answerable_questions_come_with_a_warning(tmp_path, monkeypatch):
    result = _calibrate_on_ships(tmp_path, monkeypatch, sure_of=3)

    assert result.exit_code == 0, result.output
    assert "would answer 30% of the answerable questions" in " ".join(result.output.split())


def test_written_questions_fitted_again_read_their_precision_from_the_fit_as_the_first_fit_did(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rag_guard.cli import app

    first = _calibrate_on_ships(tmp_path, monkeypatch)
    written, config = str(tmp_path / "written.jsonl"), str(tmp_path / "config.yaml")
    args = ["--questions", written, "--collection", "ships", "--target-precision", "0.9", "--config", config]
    again = CliRunner().invoke(app, ["calibrate", *args])

    assert first.exit_code == 0 and again.exit_code == 0, again.output
    for result in (first, again):
        said = " ".join(result.output.split())
        assert "expected answered precision (from the fit)" in said and "(held out)" in said  # AUROC stays 5-fold


def test_calibrate_synthetic_stopped_while_judging_keeps_the_written_questions(tmp_path, monkeypatch):
    from rag_guard.config import load_config
    from rag_guard.evaluation.questions import load_questions

    result = _calibrate_on_ships(tmp_path, monkeypatch, interrupt_judging=True)

    assert result.exit_code == 130  # Ctrl-C while the guard judges
    questions = load_questions(tmp_path / "written.jsonl")
    assert len(questions) == 16 and sum(q.answerable for q in questions) == 8
    assert load_config(tmp_path / "config.yaml", env={}).guard.calibration is None


def test_calibrate_synthetic_refuses_a_corpus_folder_and_says_to_ingest_it(tmp_path):
    from typer.testing import CliRunner

    from rag_guard.cli import app

    result = CliRunner().invoke(app, ["calibrate", "--synthetic", "--corpus", str(tmp_path)])
    assert result.exit_code == 2
    assert "rag-guard ingest" in " ".join(result.output.split())
