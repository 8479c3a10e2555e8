"""The HTTP layer over a pipeline with a fake model: OpenAI shapes, the follow-up rule, auth, limits, admission."""

import asyncio
import json

import httpx
import pytest

from rag_guard.config import ServeSettings
from rag_guard.conversation.turns import CLARIFY_MARK, mark_clarifying
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.prompts import REFUSAL
from rag_guard.serving.server import create_app
from tests.fakes import DOCS, FixedRetriever, judge_then_answer, pipeline
from tests.servers import JsonServer, free_port

QUESTION = {"model": "rag-guard", "messages": [{"role": "user", "content": "When did Voyager 2 launch?"}]}


class GatedRetriever(FixedRetriever):
    """Holds every retrieval until `gate` is set: requests stay in flight as long as a test needs."""

    gate: asyncio.Event

    async def _aget_relevant_documents(self, query, *, run_manager):
        await self.gate.wait()
        return list(self.documents)


async def always_ready() -> str:
    return "fake store"


def client(rag: GuardedRAG, **serve) -> httpx.AsyncClient:
    app = create_app(rag, ServeSettings(**serve), ready=always_ready)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rag-guard")


def events(body: str) -> list:
    data = [line.removeprefix("data: ") for line in body.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


async def test_an_answer_comes_back_in_openai_shape_with_the_rag_guard_object():
    async with client(pipeline(0.9)) as http:
        reply = (await http.post("/v1/chat/completions", json=QUESTION)).json()
    assert reply["object"] == "chat.completion"
    assert reply["model"] == "rag-guard"
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "It launched on 20 August 1977 [1]."}
    guard = reply["rag_guard"]
    assert guard["decision"] == "answer" and guard["p_sufficient"] == pytest.approx(0.9, abs=1e-3)
    assert guard["sources"][0]["source"] == "voyager.md" and guard["cited"] == [1]
    assert guard["verdict"]["reason"].startswith("p_sufficient 0.900")


async def test_a_refusal_is_the_message_content():
    async with client(pipeline(0.05)) as http:
        reply = (await http.post("/v1/chat/completions", json=QUESTION)).json()
    assert reply["choices"][0]["message"]["content"] == REFUSAL
    assert reply["rag_guard"]["decision"] == "refuse"


async def test_a_stream_opens_with_the_verdict_then_sends_the_text_then_the_whole_record():
    async with client(pipeline(0.9)) as http:
        response = await http.post("/v1/chat/completions", json={**QUESTION, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = events(response.text)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    first = chunks[0]["rag_guard"]
    assert first["decision"] == "answer" and first["p_sufficient"] == pytest.approx(0.9, abs=1e-3)
    assert first["question"] == "When did Voyager 2 launch?" and first["sources"][0]["source"] == "voyager.md"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip() == "It launched on 20 August 1977 [1]."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["rag_guard"]["decision"] == "answer" and chunks[-1]["rag_guard"]["timings"]["total_s"]
    assert all("rag_guard" not in c for c in chunks[1:-1])


async def test_a_clarifying_message_carries_the_mark_that_chains_the_reply_to_it():
    async with client(pipeline(0.4)) as http:
        reply = (await http.post("/v1/chat/completions", json=QUESTION)).json()
        streamed = events((await http.post("/v1/chat/completions", json={**QUESTION, "stream": True})).text)
    assert reply["rag_guard"]["decision"] == "clarify"
    assert reply["choices"][0]["message"]["content"].endswith(CLARIFY_MARK)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in streamed).endswith(CLARIFY_MARK)


async def test_a_reply_to_the_clarifying_question_is_judged_with_the_question_it_clarifies():
    messages = [
        {"role": "user", "content": "When did it launch?"},
        {"role": "assistant", "content": mark_clarifying("Which spacecraft do you mean?")},
        {"role": "user", "content": [{"type": "text", "text": "Voyager 2"}]},
    ]
    rag = pipeline(0.9)
    async with client(rag) as http:
        reply = (await http.post("/v1/chat/completions", json={"model": "x", "messages": messages})).json()
    assert reply["rag_guard"]["question"] == "When did it launch? (Voyager 2)"
    judged = [c["messages"][-1].text for c in rag.answerer.calls if c.get("max_tokens") == 1]
    assert "Question: When did it launch? (Voyager 2)" in judged[0]


async def test_models_lists_the_guarded_model():
    async with client(pipeline(0.9), model_name="guarded-qwen") as http:
        listing = (await http.get("/v1/models")).json()
    assert [m["id"] for m in listing["data"]] == ["guarded-qwen"]


async def test_the_guard_route_judges_documents_the_caller_supplies():
    body = {"question": "When did Voyager 2 launch?", "documents": [{"text": "Voyager 2 launched in 1977."}]}
    async with client(pipeline(0.9)) as http:
        verdict = (await http.post("/v1/guard", json=body)).json()
    assert verdict["decision"] == "answer"
    assert verdict["documents_used"] == 1


async def test_a_token_is_required_when_its_variable_is_set(monkeypatch):
    monkeypatch.setenv("RAG_GUARD_API_KEY", "s3cret")
    async with client(pipeline(0.9)) as http:
        missing = await http.post("/v1/chat/completions", json=QUESTION)
        wrong = await http.post("/v1/chat/completions", json=QUESTION, headers={"Authorization": "Bearer nope"})
        right = await http.post("/v1/chat/completions", json=QUESTION, headers={"Authorization": "Bearer s3cret"})
        health = await http.get("/healthz")
    assert missing.status_code == wrong.status_code == 401
    assert "RAG_GUARD_API_KEY" in missing.json()["error"]["message"]
    assert right.status_code == 200
    assert health.status_code == 200


async def test_an_oversized_body_gets_413():
    big = {"model": "x", "messages": [{"role": "user", "content": "a" * 5000}]}
    async with client(pipeline(0.9), max_request_bytes=2048) as http:
        response = await http.post("/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert "serve.max_request_bytes" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "x"}, "messages: Field required"),
        ({"model": "x", "messages": [{"role": "assistant", "content": "Hi."}]}, "last message"),
        ({"model": "x", "messages": [{"role": "user", "content": "   "}]}, "empty"),
    ],
)
async def test_bad_requests_get_400_saying_what_is_wrong(body, expected):
    async with client(pipeline(0.9)) as http:
        response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert expected in response.json()["error"]["message"]


def gated_pipeline(gate: asyncio.Event) -> GuardedRAG:
    model = judge_then_answer(0.9)
    guard = SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3)
    return GuardedRAG(
        retriever=GatedRetriever(documents=DOCS, gate=gate), guard=guard, answerer=model, max_concurrency=1
    )


async def test_a_full_queue_gets_503_with_retry_after_and_the_others_complete():
    gate = asyncio.Event()
    async with client(gated_pipeline(gate), queue_size=1, retry_after_s=7) as http:
        first = asyncio.create_task(http.post("/v1/chat/completions", json=QUESTION))
        second = asyncio.create_task(http.post("/v1/chat/completions", json=QUESTION))
        await asyncio.sleep(0.05)  # one runs, one waits: the queue is full
        third = await http.post("/v1/chat/completions", json=QUESTION)
        gate.set()
        done = await asyncio.gather(first, second)
    assert third.status_code == 503
    assert third.headers["Retry-After"] == "7"
    assert [r.status_code for r in done] == [200, 200]


async def test_a_request_over_the_time_limit_gets_504():
    async with client(gated_pipeline(asyncio.Event()), request_timeout_s=0.05) as http:
        response = await http.post("/v1/chat/completions", json=QUESTION)
    assert response.status_code == 504
    assert "serve.request_timeout_s" in response.json()["error"]["message"]


async def test_readiness_reports_a_store_that_does_not_answer():
    async def down() -> str:
        raise ConnectionError("chroma server unreachable")

    app = create_app(pipeline(0.9), ServeSettings(), ready=down)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert "chroma server unreachable" in response.json()["reason"]


def judged_by_openai_at(url: str) -> GuardedRAG:
    from langchain_openai import ChatOpenAI

    judge = ChatOpenAI(model="m", base_url=url, api_key="k", max_retries=0, timeout=5)
    guard = SufficiencyGuard(judge=judge, answer_threshold=0.6, clarify_threshold=0.3)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=judge)


async def test_while_the_judge_s_server_is_down_readiness_fails_and_replies_carry_the_outage():
    url = f"http://127.0.0.1:{free_port()}/v1"
    app = create_app(judged_by_openai_at(url), ServeSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        ready = await http.get("/readyz")
        reply = (await http.post("/v1/chat/completions", json=QUESTION)).json()
    assert ready.status_code == 503
    assert f"cannot reach the OpenAI-compatible server at {url}" in ready.json()["reason"]
    assert reply["rag_guard"]["decision"] == "refuse"
    assert reply["rag_guard"]["error"]["kind"] == "unreachable"
    assert reply["choices"][0]["message"]["content"] != REFUSAL


async def test_a_judge_s_server_that_answers_http_at_all_is_ready():
    with JsonServer(reply=lambda path, body: (401, "application/json", [{"error": "no key"}])) as server:
        app = create_app(judged_by_openai_at(f"{server.url}/v1"), ServeSettings())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert "is reachable" in ready.json()["detail"]


def test_the_rag_guard_object_cites_each_source_by_page_and_heading_with_its_text():
    from langchain_core.documents import Document

    from rag_guard.serving.server import guard_report

    cited = [
        Document(page_content="Voyager 2 launched on 20 August 1977.", metadata={"source": "log.pdf", "page": 12}),
        Document(page_content="Voyager 1 followed.", metadata={"source": "notes.md", "heading": "Launch order"}),
    ]
    rag = GuardedRAG(
        retriever=FixedRetriever(documents=cited),
        guard=SufficiencyGuard(judge=judge_then_answer(0.9)),
        answerer=judge_then_answer(0.9),
    )
    sources = guard_report(rag.invoke("When did Voyager 2 launch?"), {"answer": 0.7, "clarify": 0.45})["sources"]
    assert [(s["source"], s["page"], s["heading"]) for s in sources] == [
        ("log.pdf", 12, None),
        ("notes.md", None, "Launch order"),
    ]
    assert sources[0]["text"] == "Voyager 2 launched on 20 August 1977."
