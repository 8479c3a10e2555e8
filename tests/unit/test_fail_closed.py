"""Every fault on the way to a probability ends in a refusal with its reason, a logged error, and no answer.

With `fail_mode="error"` the same faults raise `GuardFailure` instead; nothing answers unguarded either way.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from rag_guard.errors import GuardFailure
from rag_guard.judging.decision import Decision
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.prompts import REFUSAL
from tests.fakes import DOCS, FakeChatModel, FixedRetriever, openai_logprobs

UNGUARDED = "an answer that skipped the gate"


def raises(exc: Exception):
    def reply(messages, kwargs):
        raise exc

    return reply


def replies(text: str, logprobs):
    return lambda messages, kwargs: (text, logprobs)


def entry(token, logprob, top=None):
    return {"content": [{"token": token, "logprob": logprob, "top_logprobs": top or []}]}


FAULTS = {
    "connection refused": raises(ConnectionError("connection refused")),
    "timeout": raises(TimeoutError("no reply in 30 s")),
    "model crashed": raises(RuntimeError("llama_decode returned -3")),
    "empty reply": replies("", None),
    "no logprobs": replies("True", None),
    "logprobs not a list": replies("True", {"content": "True"}),
    "token not a string": replies("True", entry(7, -0.1)),
    "logprob not a number": replies("True", entry("True", "high")),
    "NaN logprob": replies("True", entry("True", math.nan)),
    "+inf logprob": replies("True", entry("True", math.inf)),
    "positive logprob": replies("True", entry("True", 2.5)),
    "NaN alternative": replies("True", entry("True", -0.1, [{"token": "False", "logprob": math.nan}])),
    "top_logprobs not a list": replies("True", entry("True", -0.1, "False")),
    "no True/False token": replies("The", openai_logprobs({"The": 0.7, "Answer": 0.3})),
    "True and False both impossible": replies("The", openai_logprobs({"The": 1.0, "True": 0.0, "False": 0.0})),
}


def pipeline(judge_reply, *, fail_mode="refuse", fail_retrieval=False) -> GuardedRAG:
    """The judge replies with the fault on the one-token call and would answer `UNGUARDED` on any other."""

    def reply(messages, kwargs):
        return judge_reply(messages, kwargs) if kwargs.get("max_tokens") == 1 else (UNGUARDED, None)

    model = FakeChatModel(reply=reply)
    guard = SufficiencyGuard(judge=model, answer_threshold=0.5, clarify_threshold=0.2, fail_mode=fail_mode)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS, fail=fail_retrieval), guard=guard, answerer=model)


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_refuses_with_reason_and_a_logged_error(fault, caplog):
    rag = pipeline(FAULTS[fault])
    with caplog.at_level(logging.ERROR, logger="rag_guard"):
        result = rag.invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.REFUSE
    assert result.answer is None
    assert result.p_sufficient is None
    assert result.verdict.reason.startswith("refused: ")
    assert [call for call in rag.answerer.calls if call.get("max_tokens") != 1] == []
    assert any(record.levelno == logging.ERROR for record in caplog.records)


@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_refuses_on_the_async_stream_too(fault):
    chunks = [chunk async for chunk in pipeline(FAULTS[fault]).astream("When did Voyager 2 launch?")]
    assert [chunk.decision for chunk in chunks] == [Decision.REFUSE]
    assert all(chunk.answer is None for chunk in chunks)


@pytest.mark.parametrize("fault", FAULTS)
def test_fail_mode_error_raises_instead_of_refusing(fault):
    rag = pipeline(FAULTS[fault], fail_mode="error")
    with pytest.raises(GuardFailure):
        rag.invoke("When did Voyager 2 launch?")
    assert [call for call in rag.answerer.calls if call.get("max_tokens") != 1] == []


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("connection refused", "unreachable"),
        ("timeout", "timeout"),
        ("model crashed", "call_failed"),
        ("no logprobs", "no_probability"),
        ("no True/False token", "no_probability"),
    ],
)
def test_an_outage_says_what_failed_instead_of_the_refusal_and_carries_its_kind(fault, kind):
    result = pipeline(FAULTS[fault]).invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.REFUSE
    assert result.error is not None and result.error.kind == kind
    assert result.message != REFUSAL and "What failed:" in result.message
    assert result.error.message in result.message
    assert result.model_dump(mode="json")["error"] == {"kind": kind, "message": result.error.message}


def test_a_refusal_on_the_documents_carries_no_error():
    result = pipeline(replies("False", openai_logprobs({"True": 0.01, "False": 0.99}))).invoke("q?")
    assert result.decision is Decision.REFUSE
    assert (result.error, result.message) == (None, REFUSAL)


def test_retrieval_failure_refuses_or_raises_by_fail_mode():
    good = replies("True", openai_logprobs({"True": 0.99, "False": 0.01}))
    refused = pipeline(good, fail_retrieval=True).invoke("q?")
    assert refused.answer is None and refused.error.kind == "retrieval_failed"
    with pytest.raises(GuardFailure, match="retrieval failed"):
        pipeline(good, fail_retrieval=True, fail_mode="error").invoke("q?")


def test_a_model_file_that_does_not_load_refuses(tmp_path: Path):
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00" * 64)
    guard = SufficiencyGuard(judge=ChatLlamaCpp(model_path=corrupt), answer_threshold=0.5, clarify_threshold=0.2)
    verdict = guard.invoke({"question": "When did Voyager 2 launch?", "documents": DOCS})
    assert verdict.decision is Decision.REFUSE
    assert verdict.p_sufficient is None
    assert "corrupt.gguf" in verdict.reason
