"""The Ollama backend through langchain-ollama's real client, against a replay of Ollama's HTTP API.

No Ollama can run on the test machines, so `OllamaReplay` answers in Ollama's documented shapes. These tests
prove the request fields the guard sends (logprobs, top_logprobs, num_predict) and how every reply shape,
good or faulty, is read; they do not prove anything about a real model's judgement.
"""

from __future__ import annotations

import httpx
import pytest

from rag_guard.config import load_config
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.quote import QUOTE_TOKENS
from tests.integration.helpers import ANSWER_KEYS, ask_json, ollama_env, run
from tests.servers import REPLAYED_P, OllamaReplay, free_port, rag_guard_server

pytestmark = pytest.mark.integration

QUESTION = "When was Voyager 2 launched?"


@pytest.fixture
def replay():
    with OllamaReplay() as server:
        yield server


def test_guard_asks_ollama_for_one_token_with_logprobs_and_answers_from_it(default_config, replay):
    result = ask_json(default_config, QUESTION, env=ollama_env(replay.url))

    judge_call, quote_call, answer_call = replay.chats()  # the verdict is the default's one signal
    assert judge_call["logprobs"] is True
    assert judge_call["top_logprobs"] == 20
    assert judge_call["options"]["num_predict"] == 1
    assert judge_call["options"]["temperature"] == 0.0
    assert quote_call["messages"][-1]["content"].endswith(EXTRACT_INSTRUCTION)  # the answer's few words, quoted
    assert quote_call["options"]["num_predict"] == QUOTE_TOKENS
    assert not answer_call.get("logprobs")
    assert answer_call["options"]["num_predict"] == 256
    assert set(result) == ANSWER_KEYS
    assert result["verdict"]["raw_p"] == pytest.approx(0.9 / (0.9 + 0.08))
    assert result["verdict"]["signals"]["extract"] is None
    assert result["p_sufficient"] == pytest.approx(REPLAYED_P)
    assert result["verdict"]["alternatives"] == pytest.approx({"True": 0.9, "False": 0.08, "The": 0.02})
    assert result["decision"] == "answer"
    assert result["answer"] == "Voyager 2 launched in 1977 [1]."


def test_stream_over_ollama_yields_the_verdict_then_the_answer_tokens(default_config, replay):
    unheld = {"RAG_GUARD_GUARD__GROUNDING": "false"}  # the grounding check holds an answer until it is whole
    rag = GuardedRAG.from_config(load_config(default_config, env={**ollama_env(replay.url), **unheld}))
    chunks = list(rag.stream(QUESTION))
    assert chunks[0].verdict is not None
    assert chunks[0].verdict.p_sufficient == pytest.approx(REPLAYED_P)
    assert "".join(chunk.answer or "" for chunk in chunks[1:]) == "Voyager 2 launched in 1977 [1]."
    assert len(chunks) > 3


def test_ollama_embeddings_ingest_into_chroma(tmp_path, replay, default_config):
    config = tmp_path / "config.yaml"
    corpus = load_config(default_config, env={}).demo.corpus_dir
    config.write_text(
        "embeddings:\n  provider: ollama\n  model: nomic-embed-text\n"
        f"  base_url: {replay.url}\nchroma:\n  persist_directory: {tmp_path / 'chroma'}\n"
        f"demo:\n  corpus_dir: {corpus}\n",
        encoding="utf-8",
    )
    result = run("ingest", "--config", str(config))
    assert result.exit_code == 0, result.output
    embedded = [body for path, body in replay.requests if path == "/api/embed"]
    assert embedded
    assert {body["model"] for body in embedded} == {"nomic-embed-text"}
    assert "26 chunks" in result.output


def test_model_not_pulled_refuses_and_says_ollama_pull(default_config, replay):
    replay.script.models = []
    result = ask_json(default_config, QUESTION, env=ollama_env(replay.url), exit_code=3)
    assert result["decision"] == "refuse"
    assert result["answer"] is None
    assert "run `ollama pull qwen2.5:7b`" in result["verdict"]["reason"]


def test_ollama_without_logprobs_refuses_and_names_the_version(default_config, replay):
    replay.script.logprobs = False
    result = ask_json(default_config, QUESTION, env=ollama_env(replay.url), exit_code=3)
    assert result["decision"] == "refuse"
    assert result["answer"] is None
    assert result["p_sufficient"] is None
    assert "returned no logprobs" in result["verdict"]["reason"]
    assert "0.12.11" in result["verdict"]["reason"]
    assert len(replay.chats()) == 1  # the verdict's one-token question, and no answer call after a refusal


def test_unreachable_ollama_refuses_and_names_the_url(default_config):
    url = f"http://127.0.0.1:{free_port()}"
    result = ask_json(default_config, QUESTION, env=ollama_env(url, RAG_GUARD_MODEL__MAX_RETRIES="1"), exit_code=3)
    assert result["decision"] == "refuse"
    assert result["answer"] is None
    assert f"cannot reach the Ollama server at {url}" in result["verdict"]["reason"]
    assert "ollama serve" in result["verdict"]["reason"]
    assert result["error"]["kind"] == "unreachable"
    assert result["error"]["message"] in result["message"] and "do not appear to contain" not in result["message"]


def test_with_ollama_stopped_ask_prints_the_outage_and_exits_3(default_config):
    url = f"http://127.0.0.1:{free_port()}"
    result = run(
        "ask", QUESTION, "--config", str(default_config), env=ollama_env(url, RAG_GUARD_MODEL__MAX_RETRIES="0")
    )
    assert result.exit_code == 3, result.output
    shown = " ".join(result.stdout.split())
    assert f"cannot reach the Ollama server at {url}" in shown
    assert "do not appear to contain" not in shown


def test_serve_is_unready_while_ollama_is_down_and_ready_again_when_it_is_back(default_config, tmp_path):
    with OllamaReplay() as replay:
        port = int(replay.url.rsplit(":", 1)[1])
        env = ollama_env(replay.url, RAG_GUARD_MODEL__MAX_RETRIES="0")
        with rag_guard_server(default_config, tmp_path / "serve.log", env) as served:
            readyz = served.base_url.removesuffix("/v1") + "/readyz"
            assert httpx.get(readyz, timeout=10).status_code == 200
            replay.__exit__()
            down = httpx.get(readyz, timeout=30)
            chat = httpx.post(
                f"{served.base_url}/chat/completions",
                json={"model": "rag-guard", "messages": [{"role": "user", "content": QUESTION}]},
                timeout=60,
            ).json()
            with OllamaReplay(port=port):
                back = httpx.get(readyz, timeout=10)
    assert down.status_code == 503 and "cannot reach the Ollama server" in down.json()["reason"]
    assert chat["rag_guard"]["error"]["kind"] == "unreachable"
    assert back.status_code == 200


def test_slow_ollama_times_out_and_refuses(default_config, replay):
    replay.delay_s = 1.5
    result = ask_json(
        default_config, QUESTION, env=ollama_env(replay.url, RAG_GUARD_MODEL__TIMEOUT_S="0.3"), exit_code=3
    )
    assert result["decision"] == "refuse"
    assert result["answer"] is None
    assert "did not reply within 0.3 s" in result["verdict"]["reason"]


def test_doctor_is_happy_with_a_complete_ollama(default_config, replay):
    result = run("doctor", "--config", str(default_config), env=ollama_env(replay.url))
    assert result.exit_code == 0, result.output
    assert "Everything is ready" in result.output


def test_doctor_says_to_pull_a_missing_model_and_fails(default_config, replay):
    replay.script.models = ["llama3.2:latest"]
    result = run("doctor", "--config", str(default_config), env=ollama_env(replay.url))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "ollama pull qwen2.5:7b" in text
    assert "Not ready: answerer model, judge logprobs" in text


async def test_async_pipeline_over_ollama_uses_the_async_client_with_the_same_fields(default_config, replay):
    rag = GuardedRAG.from_config(load_config(default_config, env=ollama_env(replay.url)))
    result = await rag.ainvoke(QUESTION)
    judge_call, *_ = replay.chats()
    assert judge_call["options"]["num_predict"] == 1
    assert judge_call["top_logprobs"] == 20
    assert result.p_sufficient == pytest.approx(REPLAYED_P)
    assert result.answer == "Voyager 2 launched in 1977 [1]."
