import pytest
from langchain_core.documents import Document

from rag_guard.errors import GenerationError
from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.answers import GuardedAnswerChunk
from rag_guard.reply.policy import ReplySettings
from rag_guard.reply.prompts import ANSWER_INSTRUCTION, CLARIFY_INSTRUCTION, REFUSAL
from tests.fakes import DOCS, FakeChatModel, FixedRetriever, judge_by_question, judge_then_answer, pipeline


def generation_calls(rag: GuardedRAG) -> list[dict]:
    return [c for c in rag.answerer.calls if c.get("max_tokens") != 1]


def test_sufficient_context_is_answered_with_sources():
    result = pipeline(0.9).invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert result.answer == "It launched on 20 August 1977 [1]."
    assert result.message is None
    assert [s.source for s in result.sources] == ["voyager.md", "voyager.md"]
    assert result.sources[0].label == 1
    assert result.cited == [1]


def test_a_withheld_answer_keeps_its_draft_in_the_process_but_never_in_json():
    invented = judge_then_answer(0.9, answer="It launched in 1981 [1].")  # the passages say 1977
    guard = SufficiencyGuard(judge=invented, answer_threshold=0.6, clarify_threshold=0.3)
    rag = GuardedRAG(
        retriever=FixedRetriever(documents=DOCS),
        guard=guard,
        answerer=invented,
        reply=ReplySettings(answer_style="free"),
    )
    result = rag.invoke("When did Voyager 2 launch?")
    assert result.answer is None and result.answer_check.unsupported == ["1981"]
    assert result.answer_check.draft == "It launched in 1981 [1]."
    assert "1981 [1]" not in result.model_dump_json()


def test_a_written_answer_that_only_restates_the_question_is_withheld_for_a_clarifying_message():
    echo = judge_then_answer(0.9, answer="Voyager 2 was launched [1].")
    guard = SufficiencyGuard(judge=echo, answer_threshold=0.6, clarify_threshold=0.3)
    rag = GuardedRAG(
        retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=echo, reply=ReplySettings(answer_style="free")
    )
    result = rag.invoke("When was Voyager 2 launched?")
    assert result.decision is Decision.CLARIFY and result.answer is None
    assert result.answer_check.reason == "the answer only restates the question"
    assert "20 August 1977" in result.message  # the closest sentence, quoted


def test_answer_prompt_continues_the_guard_prompt_whole():
    rag = pipeline(0.9)
    rag.invoke("When did Voyager 2 launch?")
    calls = [call["messages"] for call in rag.answerer.calls]
    judged = next(messages for messages in calls if messages[-1].text.endswith("True or False."))
    answer = rag.answerer.calls[-1]["messages"]
    assert answer[: len(judged)] == judged
    assert [m.type for m in answer[len(judged) :]] == ["ai", "human"]
    assert answer[len(judged)].text == "True"
    assert answer[-1].text == ANSWER_INSTRUCTION


def test_clarify_prompt_continues_the_guard_prompt_after_a_false_verdict():
    rag = pipeline(0.45)
    rag.invoke("When did it launch?")
    judged, clarify = rag.answerer.calls[-2]["messages"], rag.answerer.calls[-1]["messages"]
    assert clarify[: len(judged)] == judged
    assert clarify[len(judged)].text == "False"
    assert clarify[-1].text == CLARIFY_INSTRUCTION


def test_middle_band_asks_a_clarifying_question():
    result = pipeline(0.45).invoke({"question": "When did it launch?"})
    assert result.decision is Decision.CLARIFY
    assert result.answer is None
    assert result.message


def test_a_clarifying_message_names_the_part_its_judge_found_uncovered_without_generating():
    question = "When did Voyager 2 launch, and how much did the mission cost?"
    model = judge_by_question({question: 0.9, "How much did the mission cost?": 0.4})
    guard = SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3)
    rag = GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=model)
    result = rag.invoke(question)
    assert result.decision is Decision.CLARIFY
    assert 'do not answer this part of your question: "How much did the mission cost?"' in (result.message or "")
    assert generation_calls(rag) == []


def test_low_probability_refuses_without_generating():
    rag = pipeline(0.05)
    result = rag.invoke("Who won the 2014 FIFA World Cup?")
    assert result.decision is Decision.REFUSE
    assert result.answer is None
    assert result.message == REFUSAL
    assert generation_calls(rag) == []


def test_retrieval_failure_refuses_with_the_reason():
    rag = pipeline(0.99, fail_retrieval=True)
    result = rag.invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.REFUSE
    assert "retrieval failed" in result.verdict.reason
    assert rag.answerer.calls == []


def broken_answerer(p_true: float) -> GuardedRAG:
    judge = judge_then_answer(p_true)

    def down(messages, kwargs):
        raise ConnectionError("connection refused")

    guard = SufficiencyGuard(judge=judge, answer_threshold=0.6, clarify_threshold=0.3)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=FakeChatModel(reply=down))


def test_answerer_failure_after_the_verdict_raises_a_clear_error_and_answers_nothing():
    with pytest.raises(GenerationError) as info:
        broken_answerer(0.9).invoke("When did Voyager 2 launch?")
    assert "verdict was answer" in str(info.value)
    assert "nothing was answered" in str(info.value)


async def test_answerer_failure_while_streaming_async_stops_after_the_verdict():
    chunks = []
    with pytest.raises(GenerationError):
        async for chunk in (
            broken_answerer(0.9).model_copy(update={"reply": ReplySettings(grounding=False)}).astream("When?")
        ):
            chunks.append(chunk)
    assert [chunk.answer for chunk in chunks] == [None]
    assert chunks[0].decision is Decision.ANSWER


async def test_a_held_answer_whose_model_fails_yields_nothing_before_the_error():
    with pytest.raises(GenerationError):
        async for chunk in broken_answerer(0.9).astream("When did Voyager 2 launch?"):
            pytest.fail(f"nothing is shown before the answer is checked, got {chunk}")


def test_stream_yields_the_verdict_before_any_answer_text():
    chunks = list(pipeline(0.9).stream("When did Voyager 2 launch?"))
    assert isinstance(chunks[0], GuardedAnswerChunk)
    assert chunks[0].verdict is not None and chunks[0].answer is None
    assert all(c.verdict is None for c in chunks[1:])
    assert len(chunks) > 2
    merged = sum(chunks[1:], chunks[0]).to_answer()
    assert merged.answer.strip() == "It launched on 20 August 1977 [1]."


def test_stream_of_a_refusal_is_one_chunk_with_the_message():
    chunks = list(pipeline(0.01).stream("Who won the 2014 FIFA World Cup?"))
    assert len(chunks) == 1
    assert chunks[0].decision is Decision.REFUSE
    assert chunks[0].message == REFUSAL


def test_batch_keeps_order():
    rag = pipeline(0.9)
    results = rag.batch(["When did Voyager 2 launch?", "When did Voyager 1 launch?"])
    assert [r.question for r in results] == ["When did Voyager 2 launch?", "When did Voyager 1 launch?"]


async def test_ainvoke_reports_truncation_like_invoke():
    long_docs = [Document(page_content="word " * 200, metadata={"source": f"{i}.md"}) for i in range(4)]
    model = judge_then_answer(0.9)
    guard = SufficiencyGuard(judge=model, context_window=700, reserve_tokens=100)
    rag = GuardedRAG(retriever=FixedRetriever(documents=long_docs), guard=guard, answerer=model)
    result = await rag.ainvoke("q?")
    assert result.verdict.context_truncated
    assert len(result.sources) == result.verdict.documents_used < 4


async def test_ainvoke_and_astream_match_invoke():
    rag = pipeline(0.9)
    result = await rag.ainvoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    chunks = [c async for c in rag.astream("When did Voyager 2 launch?")]
    assert chunks[0].verdict is not None
    assert "".join(c.answer or "" for c in chunks).strip() == result.answer.strip()


def test_timings_cover_every_stage_that_ran():
    timings = pipeline(0.9).invoke("When did Voyager 2 launch?").timings
    assert None not in (timings.retrieval_s, timings.guard_s, timings.generation_s, timings.total_s)
    assert timings.total_s >= timings.guard_s


def test_callbacks_see_the_nested_steps():
    from langchain_core.tracers.context import collect_runs

    with collect_runs() as collector:
        pipeline(0.9).invoke("When did Voyager 2 launch?")
    root = collector.traced_runs[0]
    names = {child.name for child in root.child_runs}
    assert {"FixedRetriever", "SufficiencyGuard", "FakeChatModel"} <= names


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_questions_are_rejected_before_any_model_call(question):
    rag = pipeline(0.9)
    with pytest.raises(ValueError, match="empty"):
        rag.invoke(question)
    assert rag.answerer.calls == []


def test_citations_keep_valid_labels_in_first_mention_order():
    from rag_guard.reply.answers import citations

    assert citations("B [2], A [1], again [2], bogus [7] [0]", n_sources=3) == [2, 1]


def test_passages_left_out_to_fit_the_window_are_reported_and_not_sent_to_the_answer():
    long_docs = [
        Document(page_content=f"passage {i} " + "word " * 200, metadata={"source": f"{i}.md"}) for i in range(4)
    ]
    model = judge_then_answer(0.9)
    # the fake counts ~4 characters a token: two or three of the four passages fit
    guard = SufficiencyGuard(
        judge=model, answer_threshold=0.6, clarify_threshold=0.3, context_window=700, reserve_tokens=100
    )
    rag = GuardedRAG(retriever=FixedRetriever(documents=long_docs), guard=guard, answerer=model)
    result = rag.invoke("q?")
    assert result.verdict.context_truncated
    assert 0 < len(result.sources) < 4
    answer_prompt = generation_calls(rag)[0]["messages"][1].text
    assert f"[{len(result.sources)}] (source:" in answer_prompt
    assert f"[{len(result.sources) + 1}] (source:" not in answer_prompt
