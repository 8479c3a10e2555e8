"""`rag-guard serve` as users run it: a subprocess on loopback, called with the official `openai` client and
langchain-openai's `ChatOpenAI`.

The default model gives the decisions (answer, clarify, refuse); the small model, with its store on a real
Chroma server and a bearer token required, takes the load test and the shutdown.
"""

from __future__ import annotations

import json
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from rag_guard.conversation.turns import CLARIFY_MARK
from rag_guard.reply.prompts import REFUSAL
from tests.integration.helpers import REPO
from tests.servers import Served, rag_guard_server

pytestmark = pytest.mark.integration

ANSWERABLE = "When was Voyager 2 launched?"
PARTLY_COVERED = "What causes neap tides, and at what time is high tide in Boston today?"
OFF_TOPIC = "Who won the 2014 FIFA World Cup?"
TOKEN = "load-test-token"
SMALL_SERVER = {
    "RAG_GUARD_MODEL__PRESET": "small",
    "RAG_GUARD_MODEL__MAX_TOKENS": "32",
    "RAG_GUARD_CHROMA__K": "2",
    # The small model's P(True) sits between 0.3 and 0.55: these thresholds make it answer, ask and refuse.
    "RAG_GUARD_GUARD__ANSWER_THRESHOLD": "0.4",
    "RAG_GUARD_GUARD__CLARIFY_THRESHOLD": "0.35",
    "RAG_GUARD_SERVE__QUEUE_SIZE": "8",
    "RAG_GUARD_API_KEY": TOKEN,
}


@pytest.fixture(scope="module")
def small_server(default_config, chroma_http_env, tmp_path_factory) -> Iterator[Served]:
    log = tmp_path_factory.mktemp("serve-small") / "serve.log"
    with rag_guard_server(default_config, log, {**chroma_http_env, **SMALL_SERVER}) as served:
        yield served


def guard_of(reply: Any) -> dict[str, Any]:
    return reply.model_extra["rag_guard"]


def ask_streaming(
    client: openai.OpenAI, question: str, started: threading.Event | None = None, *, with_first: bool = False
) -> Any:
    """The streamed text and the last event's `rag_guard` object (and, `with_first`, the first event's)."""
    text, guard, first = "", None, None
    for chunk in client.chat.completions.create(
        model="rag-guard", messages=[{"role": "user", "content": question}], stream=True
    ):
        if started is not None:
            started.set()
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        guard = (chunk.model_extra or {}).get("rag_guard", guard)
        first = first or guard
    assert guard is not None, "the last event carries the rag_guard object"
    return (text.strip(), guard, first) if with_first else (text.strip(), guard)


@pytest.mark.parametrize(
    ("question", "decision"), [(ANSWERABLE, "answer"), (PARTLY_COVERED, "clarify"), (OFF_TOPIC, "refuse")]
)
def test_the_openai_client_gets_guarded_replies(default_server, question, decision):
    client = openai.OpenAI(base_url=default_server.base_url, api_key="unused")
    reply = client.chat.completions.create(model="rag-guard", messages=[{"role": "user", "content": question}])
    content = reply.choices[0].message.content
    guard = guard_of(reply)
    assert guard["decision"] == decision
    assert guard["question"] == question
    if decision == "answer":
        assert "1977" in content and guard["p_sufficient"] >= 0.7
        assert any(s["source"] == "articles/voyager.md" for s in guard["sources"])
    elif decision == "clarify":
        assert content.endswith(CLARIFY_MARK) and content.removesuffix(CLARIFY_MARK).rstrip().endswith("?")
    else:
        assert content == REFUSAL

    streamed, streamed_guard, first_event = ask_streaming(client, question, with_first=True)
    assert streamed == content.strip()
    assert streamed_guard["decision"] == decision
    assert streamed_guard["p_sufficient"] == guard["p_sufficient"]
    assert first_event["decision"] == decision and first_event["question"] == question


def test_the_reply_to_a_clarifying_question_is_judged_as_the_question_it_narrows(default_server):
    client = openai.OpenAI(base_url=default_server.base_url, api_key="unused")
    first = client.chat.completions.create(model="rag-guard", messages=[{"role": "user", "content": PARTLY_COVERED}])
    clarifying = first.choices[0].message.content
    assert guard_of(first)["decision"] == "clarify"
    history = [
        {"role": "user", "content": PARTLY_COVERED},
        {"role": "assistant", "content": clarifying},
        {"role": "user", "content": "Just the cause of neap tides."},
    ]
    second = client.chat.completions.create(model="rag-guard", messages=history)
    judged = guard_of(second)["question"]
    assert "neap tide" in judged.lower() and "Boston" not in judged
    assert f"Read as: {judged}" in second.choices[0].message.content


def test_chat_openai_from_langchain_talks_to_it(default_server):
    chat = ChatOpenAI(model="rag-guard", base_url=default_server.base_url, api_key="unused")
    answer = chat.invoke(ANSWERABLE)
    assert "1977" in answer.text
    refusal = "".join(chunk.text for chunk in chat.stream(OFF_TOPIC))
    assert refusal == REFUSAL


def test_models_health_and_readiness(default_server):
    client = openai.OpenAI(base_url=default_server.base_url, api_key="unused")
    assert [m.id for m in client.models.list()] == ["rag-guard"]
    root = default_server.base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{root}/readyz")
    detail = ready.json()["detail"]
    assert ready.status_code == 200 and "chunks" in detail and "runs in this process" in detail


def test_the_token_is_required_when_configured(small_server):
    with pytest.raises(openai.AuthenticationError, match="bearer token"):
        openai.OpenAI(base_url=small_server.base_url, api_key="wrong").models.list()
    assert openai.OpenAI(base_url=small_server.base_url, api_key=TOKEN).models.list().data


def test_load_50_requests_from_8_clients_without_errors_or_unguarded_answers(small_server, tmp_path):
    client = openai.OpenAI(base_url=small_server.base_url, api_key=TOKEN, max_retries=0, timeout=300)
    questions = [q["question"] for q in map(json.loads, (REPO / "corpora/questions.jsonl").read_text().splitlines())]

    def one(i: int) -> tuple[float, dict[str, Any], str]:
        started = time.perf_counter()
        if i % 2:
            text, guard = ask_streaming(client, questions[i % len(questions)])
        else:
            reply = client.chat.completions.create(
                model="rag-guard", messages=[{"role": "user", "content": questions[i % len(questions)]}]
            )
            text, guard = reply.choices[0].message.content, guard_of(reply)
        return time.perf_counter() - started, guard, text

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(50)))
    wall = time.perf_counter() - started

    decisions = [guard["decision"] for _, guard, _ in results]
    assert len(results) == 50
    for _, guard, text in results:
        p = guard["p_sufficient"]
        if guard["decision"] == "answer":
            assert p is not None and p >= 0.4, "an answer without a passing verdict"
        else:  # a passing verdict is not answered only when a reply check withheld the answer, and says why
            assert p is None or p < 0.4 or guard["answer_check"], "a passing verdict neither answered nor withheld"
            assert guard["sources"] is not None
        if guard["decision"] == "refuse":
            assert text == REFUSAL
    assert {"answer", "refuse"} <= set(decisions)
    latencies = sorted(seconds for seconds, _, _ in results)
    figures = {
        "requests": 50,
        "clients": 8,
        "p50_s": statistics.median(latencies),
        "p95_s": statistics.quantiles(latencies, n=20)[18],
        "throughput_rps": 50 / wall,
        "decisions": {d: decisions.count(d) for d in set(decisions)},
    }
    print(f"\nload test (small model, one model slot): {json.dumps(figures)}")


def test_sigterm_lets_the_request_in_flight_finish(default_config, chroma_http_env, tmp_path):
    """A clean shutdown: the server stops taking requests but completes the one it is streaming."""
    with rag_guard_server(default_config, tmp_path / "serve.log", {**chroma_http_env, **SMALL_SERVER}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=TOKEN, max_retries=0)
        outcome: dict[str, Any] = {}
        in_flight = threading.Event()

        def ask() -> None:
            outcome["reply"] = ask_streaming(client, ANSWERABLE, in_flight)

        asker = threading.Thread(target=ask)
        asker.start()
        assert in_flight.wait(timeout=60), "the stream did not start"  # its first event comes before the verdict
        server.process.send_signal(signal.SIGTERM)
        asker.join(timeout=120)
        # uvicorn re-raises the signal once it has drained, so the exit status reports SIGTERM
        assert server.process.wait(timeout=120) in (0, -signal.SIGTERM)
    text, guard = outcome["reply"]
    assert guard["decision"] in {"answer", "clarify", "refuse"} and text
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
