"""The OpenAI-compatible backend: real inference through llama.cpp's own server, plus its faults.

The server (`python -m llama_cpp.server`, serving the small GGUF) is started on 127.0.0.1 at a free port, so
the guard and the answer go through the real protocol and langchain-openai's real client. Faults the server
cannot be made to produce (401, 404, a reply without logprobs, a hang) come from a small JSON stub.
"""

from __future__ import annotations

import pytest

from rag_guard.config import load_config
from rag_guard.factory import build_chat_model, build_guard
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.pipeline import GuardedRAG
from tests.integration.helpers import ANSWER_KEYS, as_judge, ask_json, ollama_env, openai_env, run
from tests.servers import REPLAYED_P, JsonServer, OllamaReplay, free_port, llama_cpp_server

pytestmark = pytest.mark.integration

QUESTION = "When was Voyager 2 launched?"
ALWAYS_ANSWER = {"RAG_GUARD_GUARD__ANSWER_THRESHOLD": "0", "RAG_GUARD_GUARD__CLARIFY_THRESHOLD": "0"}


@pytest.fixture(scope="module")
def server_url(small_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_cpp_server(small_model.model_path, alias="small", log=log) as url:
        yield url


def test_guard_over_the_server_matches_the_embedded_model(default_config, server_url, small_model):
    settings = load_config(default_config, env=openai_env(server_url))
    server_guard = build_guard(settings, build_chat_model(settings.model, settings))
    rag = GuardedRAG.from_config(settings)
    documents = rag.retriever.invoke(QUESTION)
    messages = server_guard.messages(QUESTION, documents)

    reply = server_guard.judge.invoke(messages, **server_guard.call_options)
    assert reply.response_metadata["token_usage"]["completion_tokens"] == 1

    served = server_guard.invoke({"question": QUESTION, "documents": documents})
    embedded = SufficiencyGuard(judge=small_model).invoke({"question": QUESTION, "documents": documents})
    assert served.p_sufficient is not None
    assert embedded.p_sufficient is not None
    assert served.p_sufficient == pytest.approx(embedded.p_sufficient, abs=0.02)
    assert served.token == embedded.token


def test_ask_over_the_server_gives_the_same_json_fields_as_the_embedded_model(default_config, server_url):
    result = ask_json(default_config, QUESTION, env=openai_env(server_url))
    assert set(result) == ANSWER_KEYS
    assert 0 < result["p_sufficient"] < 1
    assert {"True", "False"} <= set(result["verdict"]["alternatives"])
    assert result["sources"][0]["source"] == "articles/voyager.md"


def test_answer_is_generated_through_the_server(default_config, server_url):
    result = ask_json(default_config, QUESTION, env=openai_env(server_url, **ALWAYS_ANSWER))
    assert result["decision"] == "answer"
    assert "1977" in result["answer"]


def test_stream_over_the_server_yields_the_verdict_then_answer_text(default_config, server_url):
    unheld = {"RAG_GUARD_GUARD__GROUNDING": "false"}  # the grounding check holds an answer until it is whole
    rag = GuardedRAG.from_config(load_config(default_config, env=openai_env(server_url, **ALWAYS_ANSWER, **unheld)))
    chunks = list(rag.stream(QUESTION))
    assert chunks[0].verdict is not None
    pieces = [chunk.answer for chunk in chunks[1:] if chunk.answer]
    assert len(pieces) > 2
    assert "1977" in "".join(pieces)


def test_separate_judge_gates_the_answerer(default_config, server_url):
    """guard.model judges on the llama.cpp server; the Ollama answerer is only called to answer."""
    with OllamaReplay() as answerer:
        env = {**ollama_env(answerer.url), **as_judge(openai_env(server_url)), **ALWAYS_ANSWER}
        result = ask_json(default_config, QUESTION, env=env)
        assert result["decision"] == "answer"
        assert result["verdict"]["token"] in {"True", "False"}  # the real model's verdict, not the replay's
        assert result["p_sufficient"] != pytest.approx(REPLAYED_P, abs=1e-3)
        [call] = answerer.chats()
        assert call["options"]["num_predict"] == 256
        assert result["answer"] == "Voyager 2 launched in 1977 [1]."


def test_doctor_is_happy_with_the_server(default_config, server_url):
    result = run("doctor", "--config", str(default_config), env=openai_env(server_url))
    assert result.exit_code == 0, result.output


# --- faults -----------------------------------------------------------------------------------------------


def openai_error(status: int, message: str):
    return lambda path, body: (status, "application/json", [{"error": {"message": message, "type": "error"}}])


def completion_without_logprobs(path, body):
    return (
        200,
        "application/json",
        [
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", ""),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "True"}, "finish_reason": "length"}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
            }
        ],
    )


def refusal_reason(config, url: str, **extra: str) -> str:
    result = ask_json(config, QUESTION, env=openai_env(url, **extra), exit_code=3)
    assert result["error"]["message"] in result["message"]
    assert result["decision"] == "refuse"
    assert result["answer"] is None
    assert result["p_sufficient"] is None
    return result["verdict"]["reason"]


def test_unreachable_server_refuses_and_says_how_to_start_one(default_config):
    url = f"http://127.0.0.1:{free_port()}/v1"
    reason = refusal_reason(default_config, url, RAG_GUARD_MODEL__MAX_RETRIES="0")
    assert f"cannot reach the OpenAI-compatible server at {url}" in reason
    assert "llama_cpp.server" in reason


def test_rejected_api_key_refuses(default_config):
    with JsonServer(openai_error(401, "Incorrect API key provided")) as stub:
        reason = refusal_reason(default_config, stub.url)
    assert "rejected the API key" in reason


def test_unknown_model_refuses_and_names_it(default_config):
    with JsonServer(openai_error(404, "The model `small` does not exist")) as stub:
        reason = refusal_reason(default_config, stub.url)
    assert "has no model 'small'" in reason


def test_reply_without_logprobs_refuses_and_says_which_server(default_config):
    with JsonServer(completion_without_logprobs) as stub:
        reason = refusal_reason(default_config, stub.url)
        assert len(stub.requests) == 1  # the verdict's one-token question; refused without an answer call
    assert f"the OpenAI-compatible server at {stub.url} returned no logprobs for 'small'" in reason


def test_timeout_is_retried_a_bounded_number_of_times_then_refuses(default_config):
    with JsonServer(completion_without_logprobs, delay_s=2.0) as stub:
        reason = refusal_reason(
            default_config, stub.url, RAG_GUARD_MODEL__TIMEOUT_S="0.3", RAG_GUARD_MODEL__MAX_RETRIES="2"
        )
        assert len(stub.requests) == 3
    assert "did not reply within 0.3 s (tried 3 times)" in reason


def test_missing_api_key_for_a_remote_server_stops_before_any_request(default_config):
    env = openai_env("https://api.deepseek.com/v1", RAG_GUARD_MODEL__API_KEY_ENV="DEEPSEEK_API_KEY")
    env["DEEPSEEK_API_KEY"] = ""
    result = run("ask", QUESTION, "--json", "--config", str(default_config), env=env)
    assert result.exit_code == 1
    assert "$DEEPSEEK_API_KEY is not set" in result.output
    assert "{" not in result.stdout


def test_doctor_fails_and_says_what_is_wrong_when_the_server_is_down(default_config):
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = run("doctor", "--config", str(default_config), env=openai_env(url, RAG_GUARD_MODEL__MAX_RETRIES="0"))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "cannot reach the OpenAI-compatible server" in text
    assert "Not ready: answerer server" in text


async def test_async_pipeline_over_the_server_answers(default_config, server_url):
    rag = GuardedRAG.from_config(load_config(default_config, env=openai_env(server_url, **ALWAYS_ANSWER)))
    result = await rag.ainvoke(QUESTION)
    assert result.verdict.p_sufficient is not None
    assert "1977" in (result.answer or "")


def test_answerer_down_after_the_judge_said_answer_stops_with_a_message(default_config, server_url):
    down = f"http://127.0.0.1:{free_port()}"
    env = {
        **ollama_env(down, RAG_GUARD_MODEL__MAX_RETRIES="0"),
        **as_judge(openai_env(server_url)),
        **ALWAYS_ANSWER,
    }
    result = run("ask", QUESTION, "--json", "--config", str(default_config), env=env)
    assert result.exit_code == 1
    assert "nothing was answered" in result.output
    assert f"cannot reach the Ollama server at {down}" in " ".join(result.output.split())
    assert "{" not in result.stdout
