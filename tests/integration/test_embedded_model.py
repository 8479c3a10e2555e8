"""The in-process llama.cpp chat model on the small preset: logprobs shape, streaming, async, prefix reuse,
single-pass mode."""

from __future__ import annotations

import math

import pytest
from langchain_core.documents import Document

from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.logprobs import p_true, parse_logprobs
from rag_guard.judging.prompts import (
    EXTRACT_INSTRUCTION,
    GUARD_INSTRUCTION,
    SINGLE_PASS_INSTRUCTION,
    build_messages,
    follow_up,
)
from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.prompts import ANSWER_INSTRUCTION
from tests.fakes import FixedRetriever

pytestmark = pytest.mark.integration

DOCS = [Document(page_content="Voyager 2 was launched on 20 August 1977.", metadata={"source": "voyager.md"})]


def test_one_token_call_returns_openai_shaped_logprobs(small_model):
    reply = small_model.invoke(
        build_messages("When was Voyager 2 launched?", DOCS, GUARD_INSTRUCTION),
        max_tokens=1,
        logprobs=True,
        top_logprobs=5,
    )
    content = reply.response_metadata["logprobs"]["content"]
    assert len(content) == 1
    entry = content[0]
    assert entry["token"] == reply.content
    assert bytes(entry["bytes"]).decode() == entry["token"]
    top = [alt["logprob"] for alt in entry["top_logprobs"]]
    assert len(top) == 5
    assert top == sorted(top, reverse=True)
    assert entry["logprob"] == pytest.approx(top[0])  # greedy decoding picks the most likely token
    assert sum(math.exp(lp) for lp in top) <= 1.0 + 1e-6
    assert reply.usage_metadata["output_tokens"] == 1


def test_every_generated_token_has_a_logprob(small_model):
    reply = small_model.invoke(build_messages("When was Voyager 2 launched?", DOCS, ANSWER_INSTRUCTION), logprobs=True)
    tokens = parse_logprobs(reply.response_metadata["logprobs"])
    assert "".join(t.token for t in tokens) == reply.content
    assert reply.usage_metadata["output_tokens"] == len(tokens)


def test_stream_yields_the_same_text_as_invoke(small_model):
    messages = build_messages("When was Voyager 2 launched?", DOCS, ANSWER_INSTRUCTION)
    pieces = [chunk.content for chunk in small_model.stream(messages)]
    assert len(pieces) > 3
    assert "".join(pieces) == small_model.invoke(messages).content


async def test_ainvoke_works_and_agrees_with_invoke(small_model):
    messages = build_messages("When was Voyager 2 launched?", DOCS, ANSWER_INSTRUCTION)
    assert (await small_model.ainvoke(messages)).content == small_model.invoke(messages).content


def test_answer_after_guard_reuses_the_shared_prefix(small_model):
    small_model.invoke(build_messages("When was Voyager 2 launched?", DOCS, GUARD_INSTRUCTION), max_tokens=1)
    reply = small_model.invoke(build_messages("When was Voyager 2 launched?", DOCS, ANSWER_INSTRUCTION), max_tokens=4)
    reused = reply.response_metadata["prompt_tokens_reused"]
    assert reused > 0.8 * reply.usage_metadata["input_tokens"] - 80


def test_prefix_reuse_does_not_change_the_verdict(small_model):
    fresh = ChatLlamaCpp(model_path=small_model.model_path, n_ctx=small_model.n_ctx, reuse_prefix=False)
    item = {"question": "When was Voyager 2 launched?", "documents": DOCS}
    small_model.invoke(build_messages(item["question"], DOCS, ANSWER_INSTRUCTION), max_tokens=2)
    reused = SufficiencyGuard(judge=small_model).invoke(item)
    cold = SufficiencyGuard(judge=fresh).invoke(item)
    assert reused.decision is cold.decision
    assert reused.p_sufficient == cold.p_sufficient


@pytest.mark.parametrize("question", ["When was Voyager 2 launched?", "Who built Voyager 2?"])
def test_verdicts_after_a_whole_guarded_answer_equal_cold_verdicts(small_model, question):
    """The answer continues the verdict's prompt unaligned; the next verdict must not inherit that."""
    answering = SufficiencyGuard(judge=small_model, answer_threshold=0.0, clarify_threshold=0.0)
    rag = GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=answering, answerer=small_model)
    assert rag.invoke("When was Voyager 2 launched?").answer
    fresh = ChatLlamaCpp(model_path=small_model.model_path, n_ctx=small_model.n_ctx, reuse_prefix=False)
    item = {"question": question, "documents": DOCS}
    reused = SufficiencyGuard(judge=small_model).invoke(item)
    cold = SufficiencyGuard(judge=fresh).invoke(item)
    assert reused.p_sufficient == cold.p_sufficient


def test_a_call_with_a_branch_forks_after_the_shared_part_and_equals_a_cold_evaluation(small_model):
    """The verdict after the extractive question evaluates only its own instruction, bit for bit as cold."""
    question = "When was Voyager 2 launched?"
    verdict_prompt = build_messages(question, DOCS, GUARD_INSTRUCTION)
    options = {"max_tokens": 1, "logprobs": True, "top_logprobs": 5}
    small_model.invoke(build_messages(question, DOCS, EXTRACT_INSTRUCTION), branch=EXTRACT_INSTRUCTION, **options)
    forked = small_model.invoke(verdict_prompt, branch=GUARD_INSTRUCTION, **options)
    fresh = ChatLlamaCpp(model_path=small_model.model_path, n_ctx=small_model.n_ctx, reuse_prefix=False)
    cold = fresh.invoke(verdict_prompt, branch=GUARD_INSTRUCTION, **options)
    shared = small_model.branch_point(verdict_prompt, small_model.prompt_tokens(verdict_prompt), GUARD_INSTRUCTION)
    assert forked.response_metadata["prompt_tokens_reused"] == shared
    assert shared % 64 != 0  # not merely a whole block: the fork is where the instructions part
    assert forked.response_metadata["logprobs"] == cold.response_metadata["logprobs"]


def test_a_branch_that_is_not_the_prompts_ending_is_an_error(small_model):
    with pytest.raises(ValueError, match="branch"):
        small_model.invoke(build_messages("q?", DOCS, GUARD_INSTRUCTION), max_tokens=1, branch=EXTRACT_INSTRUCTION)


def test_the_answer_reuses_the_whole_verdict_prompt(small_model):
    guard = SufficiencyGuard(judge=small_model, answer_threshold=0.0, clarify_threshold=0.0)
    messages = guard.messages("When was Voyager 2 launched?", DOCS)
    verdict = small_model.invoke(messages, max_tokens=1, logprobs=True, top_logprobs=5)
    answer = small_model.invoke(follow_up(messages, "True", ANSWER_INSTRUCTION), max_tokens=4)
    assert answer.response_metadata["prompt_tokens_reused"] == verdict.usage_metadata["input_tokens"]


def test_the_few_shot_examples_are_evaluated_once_not_per_question(small_model):
    """The examples sit in the system text every guard prompt begins with, so the next question reuses them."""
    guard = SufficiencyGuard(judge=small_model, few_shot=True)
    rag = GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=small_model)
    rag.invoke("When was Voyager 2 launched?")
    system = small_model.prompt_tokens(guard.messages("", [])[:1])
    assert len(system) > 200  # the system text with its worked examples
    verdict = small_model.invoke(guard.messages("Who built the Voyager probes?", DOCS), **guard.call_options)
    assert verdict.response_metadata["prompt_tokens_reused"] >= (len(system) - 8) // 64 * 64  # whole blocks


def test_prompt_longer_than_the_window_is_a_clear_error(small_model):
    long_doc = [Document(page_content="word " * 5000, metadata={"source": "long.md"})]
    with pytest.raises(ValueError, match="context window"):
        small_model.invoke(build_messages("q?", long_doc, GUARD_INSTRUCTION), max_tokens=1)


def single_pass_pipeline(model: ChatLlamaCpp, answer_threshold: float, clarify_threshold: float) -> GuardedRAG:
    guard = SufficiencyGuard(judge=model, answer_threshold=answer_threshold, clarify_threshold=clarify_threshold)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=model, single_pass=True)


def test_single_pass_verdict_is_the_first_token_of_the_answer_generation(small_model):
    rag = single_pass_pipeline(small_model, 0.0, 0.0)
    result = rag.invoke("When was Voyager 2 launched?")
    one_token = small_model.invoke(
        rag.guard.messages("When was Voyager 2 launched?", DOCS, SINGLE_PASS_INSTRUCTION),
        max_tokens=1,
        logprobs=True,
        top_logprobs=20,
    )
    assert result.p_sufficient == p_true(parse_logprobs(one_token.response_metadata["logprobs"])[0])
    assert result.decision is Decision.ANSWER
    assert result.answer and not result.answer.lower().startswith("true")


async def test_a_single_pass_refusal_stops_generating_and_frees_the_model(small_model):
    rag = single_pass_pipeline(small_model, 1.0, 1.0)
    refused = await rag.ainvoke("When was Voyager 2 launched?")
    assert refused.decision is Decision.REFUSE
    assert refused.answer is None
    # the stopped generation released the model's lock: the next calls run
    assert rag.invoke("When was Voyager 2 launched?").decision is Decision.REFUSE
    assert small_model.invoke("Say hi.", max_tokens=2).content
