import asyncio

import pytest

from rag_guard.config import Settings
from rag_guard.evaluation.evaluate import given_or_retrieved, judge_all, report
from rag_guard.evaluation.questions import LabelledQuestion
from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.policy import ReplySettings
from rag_guard.reply.prompts import CLARIFY_INSTRUCTION
from tests.fakes import DOCS, FixedRetriever, judge_then_answer


def through(model, guard: SufficiencyGuard) -> GuardedRAG:
    """The pipeline `rag-guard eval --answers` runs each question through, free answers, logprobs asked."""
    no_documents = FixedRetriever(documents=[])
    replies = ReplySettings(answer_style="free", answer_options={"logprobs": True})
    return GuardedRAG(retriever=no_documents, guard=guard, answerer=model, reply=replies)


QUESTIONS = [
    LabelledQuestion(question="When did Voyager 2 launch?", answerable=True),
    LabelledQuestion(question="Who won in 2014?", answerable=False),
    LabelledQuestion(question="When did Voyager 1 launch?", answerable=True),
]


async def test_every_question_is_judged_in_order_within_the_concurrency_bound():
    running, peak = 0, 0

    class CountingRetriever(FixedRetriever):
        async def _aget_relevant_documents(self, query, *, run_manager):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            return list(self.documents)

    seen: list[tuple[int, int]] = []
    guard = SufficiencyGuard(judge=judge_then_answer(0.9), answer_threshold=0.7, clarify_threshold=0.45)
    judged = await judge_all(
        guard,
        given_or_retrieved(CountingRetriever(documents=DOCS)),
        QUESTIONS,
        2,
        lambda done, total: seen.append((done, total)),
    )
    assert [j.verdict.decision for j in judged] == [Decision.ANSWER] * 3
    assert judged[0].sources == ["voyager.md", "voyager.md"]
    assert peak == 2
    assert seen[-1] == (3, 3)


async def test_report_has_the_figures_and_one_row_per_question():
    guard = SufficiencyGuard(judge=judge_then_answer(0.9), answer_threshold=0.7, clarify_threshold=0.45)
    judged = await judge_all(guard, given_or_retrieved(FixedRetriever(documents=DOCS)), QUESTIONS, 1)
    result = report(QUESTIONS, judged, guard)
    assert result.n == 3
    assert result.answered_precision == 2 / 3
    assert result.coverage == 1.0
    assert result.guard_latency_s_mean is not None
    assert [row.question for row in result.rows] == [q.question for q in QUESTIONS]
    payload = result.model_dump(mode="json")
    for key in (
        "n",
        "auroc",
        "ece",
        "answered_precision",
        "coverage",
        "unanswerable_refusal_rate",
        "answer_threshold",
        "clarify_threshold",
        "guard_latency_s_mean",
    ):
        assert key in payload


async def test_with_an_answerer_answered_questions_carry_their_answer_and_its_confidence():
    from tests.fakes import FakeChatModel, openai_logprobs

    def reply(messages, kwargs):
        if kwargs.get("max_tokens") == 1:
            return "True", openai_logprobs({"True": 0.9, "False": 0.1})
        tokens = [{"token": t, "logprob": lp, "top_logprobs": []} for t, lp in (("In", -0.1), (" 1977", -0.5))]
        return "In 1977", {"content": tokens}

    model = FakeChatModel(reply=reply)
    guard = SufficiencyGuard(judge=model, answer_threshold=0.7, clarify_threshold=0.45)
    judged = await judge_all(
        guard, given_or_retrieved(FixedRetriever(documents=DOCS)), QUESTIONS[:1], 1, pipeline=through(model, guard)
    )
    row = report(QUESTIONS[:1], judged, guard).rows[0]
    assert row.answer == "In 1977"
    assert [t.token for t in row.answer_tokens] == ["In", " 1977"]
    assert row.joint_logprob == -0.6
    assert abs(row.perplexity - 2.718281828**0.3) < 1e-9
    assert model.calls[-1]["messages"][-1].text.startswith("Task: answer")


async def test_answers_are_scored_against_gold_and_an_answered_unanswerable_question_is_wrong():
    questions = [
        LabelledQuestion(question="When did Voyager 2 launch?", answerable=True, answer="20 August 1977"),
        LabelledQuestion(question="When did Voyager 1 launch?", answerable=True, answer=["5 September 1977"]),
        LabelledQuestion(question="What did it cost?", answerable=False),
    ]
    model = judge_then_answer(0.9, answer="It launched on 20 August 1977 [1].")
    guard = SufficiencyGuard(judge=model, answer_threshold=0.7, clarify_threshold=0.45)
    documents_for = given_or_retrieved(FixedRetriever(documents=DOCS))
    judged = await judge_all(guard, documents_for, questions, 1, pipeline=through(model, guard))
    result = report(questions, judged, guard)
    assert [row.scored.right for row in result.rows] == [True, False, False]
    assert result.answers_scored == 3
    assert result.answers_right == 1 / 3
    assert result.answer_f1_mean == pytest.approx((2 / 3 + 2 / 9 + 0.0) / 3)  # F1 of the second: only 1977 shared
    assert result.answers_uncited == 0
    payload = result.model_dump(mode="json")
    assert {"answers_right", "answer_f1_mean", "answers_uncited", "missing_named"} <= payload.keys()


async def test_a_clarified_question_gets_its_message_scored_on_the_missing_part():
    questions = [
        LabelledQuestion(
            question="When was Voyager 1 launched, and what did it cost?",
            answerable=False,
            missing="mission cost",
        )
    ]
    model = judge_then_answer(0.5, answer="what did it cost")
    guard = SufficiencyGuard(judge=model, answer_threshold=0.7, clarify_threshold=0.45)
    documents_for = given_or_retrieved(FixedRetriever(documents=DOCS))
    judged = await judge_all(guard, documents_for, questions, 1, pipeline=through(model, guard))
    result = report(questions, judged, guard)
    row = result.rows[0]
    assert row.decision is Decision.CLARIFY
    assert row.answer is None and '"what did it cost?"' in row.message
    assert result.missing_labelled == 1 and result.missing_named == 0.0  # "mission" is not named
    assert result.answers_scored == 0 and result.answers_right is None
    assert model.calls[-1]["messages"][-1].text == CLARIFY_INSTRUCTION


async def test_without_an_answerer_nothing_is_generated_or_scored():
    guard = SufficiencyGuard(judge=judge_then_answer(0.9), answer_threshold=0.7, clarify_threshold=0.45)
    judged = await judge_all(guard, given_or_retrieved(FixedRetriever(documents=DOCS)), QUESTIONS, 1)
    result = report(QUESTIONS, judged, guard)
    assert all(row.answer is None and row.scored is None for row in result.rows)
    assert result.answers_scored == 0 and result.answers_right is None


def stand_in_models(monkeypatch, built: list[str] | None = None) -> None:
    """The factory builds a fake judge (noting each build in `built`) and a guard on it; nothing loads."""
    from types import SimpleNamespace

    from rag_guard import factory

    judge = judge_then_answer(0.9)

    def models(settings):
        if built is not None:
            built.append("models")
        return SimpleNamespace(judge=judge, answerer=judge)

    monkeypatch.setattr(factory, "build_models", models)
    monkeypatch.setattr(factory, "load_models", lambda *models: None)
    monkeypatch.setattr(factory, "max_concurrency", lambda models, settings: 1)
    monkeypatch.setattr(
        factory,
        "build_guard",
        lambda settings, j, **fields: SufficiencyGuard(judge=j, answer_threshold=0.7, clarify_threshold=0.45),
    )


def test_a_reading_stopped_part_way_goes_on_from_its_checkpoint(tmp_path, monkeypatch):
    from contextlib import contextmanager

    import rag_guard.evaluation.evaluate as evaluate_module
    from rag_guard import factory

    asked: list[str] = []

    class RecordingRetriever(FixedRetriever):
        async def _aget_relevant_documents(self, query, *, run_manager):
            asked.append(query)
            return list(self.documents)

    stand_in_models(monkeypatch)
    monkeypatch.setattr(
        evaluate_module, "temporary_retriever", contextmanager(lambda s, c: (yield RecordingRetriever(documents=DOCS)))
    )
    monkeypatch.setattr(evaluate_module, "SAVE_EVERY", 1)
    checkpoint = tmp_path / "set.partial.jsonl"

    first = evaluate_module.evaluate(Settings(), tmp_path, QUESTIONS[:1], checkpoint=checkpoint)
    checkpoint.write_text(checkpoint.read_text() + '{"index": 1, "row": {"quest', encoding="utf-8")  # cut short
    batches: list[list[str]] = []
    on_judged = lambda qs, rows: batches.append([q.question for q in qs] + [r.question for r in rows])  # noqa: E731
    whole = evaluate_module.evaluate(Settings(), tmp_path, QUESTIONS, checkpoint=checkpoint, on_judged=on_judged)
    assert asked == [q.question for q in QUESTIONS]  # the first question was not judged again
    assert batches == [[q.question] * 2 for q in QUESTIONS[1:]]  # each batch handed over as it was judged
    assert whole.rows[0] == first.rows[0] and [r.question for r in whole.rows] == [q.question for q in QUESTIONS]

    monkeypatch.setattr(factory, "load_models", lambda *models: pytest.fail("nothing is left to judge"))
    again = evaluate_module.evaluate(Settings(), tmp_path, QUESTIONS, checkpoint=checkpoint)
    assert again == whole
    reordered = evaluate_module.read_checkpoint(checkpoint, list(reversed(QUESTIONS)))
    assert list(reordered) == [1]  # only the row still at its position is used


async def test_an_answer_the_grounding_check_withheld_is_scored_as_drafted_and_shown_as_the_message():
    questions = [LabelledQuestion(question="When did Voyager 2 launch?", answerable=True, answer="1977")]
    model = judge_then_answer(0.9, answer="It launched in 1981 [1].")  # the passages say 1977
    guard = SufficiencyGuard(judge=model, answer_threshold=0.7, clarify_threshold=0.45)
    documents_for = given_or_retrieved(FixedRetriever(documents=DOCS))
    judged = await judge_all(guard, documents_for, questions, 1, pipeline=through(model, guard))
    row = report(questions, judged, guard).rows[0]
    assert row.answer is None and row.draft == "It launched in 1981 [1]."
    assert row.unsupported == ["1981"] and "1981" not in row.message
    assert row.scored.withheld and not row.scored.right


async def test_a_quoted_answer_carries_its_span_s_token_confidence():
    from tests.fakes import FakeChatModel, openai_logprobs

    def reply(messages, kwargs):
        if kwargs.get("max_tokens") == 1:
            return ("Aug" if "short answer" in messages[-1].text else "True"), openai_logprobs(
                {"True": 0.9, "Aug": 0.9}
            )
        tokens = [{"token": t, "logprob": lp, "top_logprobs": []} for t, lp in (("20", -0.1), (" August", -0.7))]
        return "20 August", {"content": tokens}

    model = FakeChatModel(reply=reply)
    guard = SufficiencyGuard(judge=model, answer_threshold=0.7, clarify_threshold=0.45)
    quoting = through(model, guard).model_copy(
        update={"reply": ReplySettings(answer_style="quote", quote_options={"max_tokens": 16})}
    )
    documents_for = given_or_retrieved(FixedRetriever(documents=DOCS))
    judged = await judge_all(guard, documents_for, QUESTIONS[:1], 1, pipeline=quoting)
    row = report(QUESTIONS[:1], judged, guard).rows[0]
    assert row.answer.startswith("20 August [") and row.answer_tokens is None
    assert row.min_token_p == pytest.approx(2.718281828**-0.7) and row.joint_logprob == pytest.approx(-0.8)


async def test_with_the_answer_check_on_each_answer_row_records_the_model_s_p_supported():
    from tests.unit.reply.test_checks import checked_pipeline

    rag = checked_pipeline(0.8)
    questions = [LabelledQuestion(question="When did Voyager 2 launch?", answerable=True, answer="20 August 1977")]
    judged = await judge_all(rag.guard, given_or_retrieved(rag.retriever), questions, 1, pipeline=rag)
    row = report(questions, judged, rag.guard).rows[0]
    assert row.answer is not None and row.p_supported == pytest.approx(0.8)


def test_an_evaluator_builds_the_models_once_and_one_store_per_corpus(tmp_path, monkeypatch):
    from contextlib import contextmanager

    import rag_guard.evaluation.evaluate as evaluate_module

    built: list[str] = []
    opened: list[str] = []
    stand_in_models(monkeypatch, built)

    @contextmanager
    def store(settings, corpus):
        opened.append(corpus.name)
        yield FixedRetriever(documents=DOCS)
        opened.append(f"closed {corpus.name}")

    monkeypatch.setattr(evaluate_module, "temporary_retriever", store)
    with evaluate_module.Evaluator(Settings()) as evaluator:
        first = evaluator.evaluate(tmp_path / "articles", QUESTIONS[:2])
        second = evaluator.evaluate(tmp_path / "articles", QUESTIONS[2:])
        evaluator.evaluate(tmp_path / "other", QUESTIONS[:1])
        assert opened == ["articles", "other"]
    assert built == ["models"] and opened[2:] == ["closed other", "closed articles"]
    assert first.n == 2 and second.n == 1


def test_eval_reads_its_thresholds_from_the_guard_it_runs_not_from_the_settings(tmp_path, monkeypatch):
    from contextlib import contextmanager

    import rag_guard.evaluation.evaluate as evaluate_module

    stand_in_models(monkeypatch)  # the guard built answers at 0.7 and clarifies at 0.45
    monkeypatch.setattr(
        evaluate_module, "temporary_retriever", contextmanager(lambda s, c: (yield FixedRetriever(documents=DOCS)))
    )
    settings = Settings()
    assert (settings.guard.answer_threshold, settings.guard.clarify_threshold) != (0.7, 0.45)
    result = evaluate_module.evaluate(settings, tmp_path, QUESTIONS)
    assert (result.answer_threshold, result.clarify_threshold) == (0.7, 0.45)


async def test_a_withheld_answer_is_left_out_of_the_passages_even_by_a_retriever_that_cannot_leave_it_out():
    from langchain_core.documents import Document

    stating = Document(page_content="Voyager 2 launched on 20 August 1977.", metadata={"source": "voyager.md"})
    around = Document(page_content="Voyager 2 flew past Neptune in 1989.", metadata={"source": "voyager.md"})
    question = LabelledQuestion(question="When did Voyager 2 launch?", answerable=False, withhold="20 August 1977")
    documents_for = given_or_retrieved(FixedRetriever(documents=[stating, around]))
    assert await documents_for(question) == [around]
