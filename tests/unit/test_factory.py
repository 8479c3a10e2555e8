import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_ollama import ChatOllama

from rag_guard.config import ModelSettings, Settings
from rag_guard.errors import ModelUnavailableError
from rag_guard.factory import (
    build_chat_model,
    build_models,
    estimate_tokens,
    guard_call_options,
    is_loopback,
)
from rag_guard.models.openai_compatible import ChatOpenAICompatible

OLLAMA = ModelSettings(provider="ollama", name="qwen2.5:7b", n_ctx=8192, max_tokens=200, temperature=0.2)
REMOTE = ModelSettings(provider="openai", name="deepseek-chat", base_url="https://api.deepseek.com/v1")
LOCAL = ModelSettings(provider="openai", name="local", base_url="http://127.0.0.1:8080/v1")


def test_ollama_guard_call_generates_one_token_and_keeps_the_sampling_options():
    options = guard_call_options(OLLAMA, top_logprobs=5)
    assert options["logprobs"] is True
    assert options["top_logprobs"] == 5
    assert options["options"] == {"num_ctx": 8192, "num_predict": 1, "temperature": 0.2, "seed": 0}


def test_openai_guard_call_uses_max_tokens_one():
    assert guard_call_options(REMOTE, top_logprobs=20) == {"max_tokens": 1, "logprobs": True, "top_logprobs": 20}


def test_openai_client_sends_max_tokens_not_max_completion_tokens():
    """llama.cpp's server ignores max_completion_tokens; the one-token guard call must stay one token."""
    chat = build_chat_model(LOCAL, Settings(model=LOCAL))
    assert isinstance(chat, ChatOpenAICompatible)
    payload = chat._get_request_payload([HumanMessage("q")], max_tokens=1, logprobs=True, top_logprobs=3)
    assert payload["max_tokens"] == 1
    assert "max_completion_tokens" not in payload


def test_missing_api_key_for_a_remote_server_names_the_variable(monkeypatch):
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    settings = REMOTE.model_copy(update={"api_key_env": "DEEPSEEK_API_KEY"})
    with pytest.raises(ModelUnavailableError) as info:
        build_chat_model(settings, Settings(model=settings))
    assert "$DEEPSEEK_API_KEY is not set" in str(info.value)
    assert "never from config.yaml" in str(info.value)


def test_api_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    chat = build_chat_model(REMOTE, Settings(model=REMOTE))
    assert chat.openai_api_key.get_secret_value() == "sk-test-123"


def test_a_local_server_needs_no_api_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert build_chat_model(LOCAL, Settings(model=LOCAL)).openai_api_key.get_secret_value()


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:11434", True),
        ("http://127.0.0.1:8080/v1", True),
        ("http://[::1]:80", True),
        ("https://api.deepseek.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
    ],
)
def test_is_loopback(url, local):
    assert is_loopback(url) is local


def test_without_guard_model_the_answerer_judges_too():
    models = build_models(Settings(model=OLLAMA))
    assert models.judge is models.answerer
    assert models.judge_settings == OLLAMA


def test_guard_model_builds_a_separate_judge():
    settings = Settings(model=OLLAMA, guard={"model": LOCAL.model_dump()})
    models = build_models(settings)
    assert isinstance(models.answerer, ChatOllama)
    assert isinstance(models.judge, ChatOpenAICompatible)
    assert models.judge_settings.name == "local"


def test_token_estimate_errs_high_for_english_text():
    messages = [SystemMessage("You answer from the context."), HumanMessage("When was Voyager 2 launched? " * 20)]
    characters = sum(len(m.text) for m in messages)
    assert estimate_tokens(messages) >= characters / 4


def test_the_embedded_model_names_itself_and_its_call_options_for_tracing():
    from pathlib import Path

    from rag_guard.models.llamacpp import ChatLlamaCpp

    model = ChatLlamaCpp(model_path=Path("/models/default-cc324af0.gguf"), temperature=0.2, max_tokens=64)
    assert model._get_ls_params() == {
        "ls_provider": "llamacpp",
        "ls_model_name": "default-cc324af0",
        "ls_model_type": "chat",
        "ls_temperature": 0.2,
        "ls_max_tokens": 64,
    }
    called = model._get_ls_params(stop=["\n"], max_tokens=1, temperature=0.0)
    assert called["ls_max_tokens"] == 1 and called["ls_temperature"] == 0.0 and called["ls_stop"] == ["\n"]
