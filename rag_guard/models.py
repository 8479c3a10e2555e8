"""Chat models from the config, one builder per provider, and the call options that make a judge emit one token.

Each provider is its real LangChain client: the embedded `ChatLlamaCpp`, langchain-ollama's `ChatOllama`, and
langchain-openai's client for OpenAI-compatible servers. Whatever the provider, the judge's reply carries
logprobs in `response_metadata["logprobs"]`, which `logprobs.parse_logprobs` reads in both shapes.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from rag_guard.config import ModelSettings, Settings
from rag_guard.errors import ModelUnavailableError

TokenCounter = Callable[[Sequence[BaseMessage]], int]

# Servers that need no key still want one in the header; any text does.
_LOCAL_SERVER_KEY = "not-needed"
# Chat templates add a few tokens of framing per message.
_TOKENS_PER_MESSAGE = 8


@dataclass(frozen=True)
class Models:
    """The answerer and the judge, built once; the same object when `guard.model` is not set."""

    answerer: BaseChatModel
    judge: BaseChatModel
    judge_settings: ModelSettings


def build_models(settings: Settings) -> Models:
    answerer = build_chat_model(settings.model, settings)
    judge_settings = settings.guard.model or settings.model
    judge = answerer if judge_settings == settings.model else build_chat_model(judge_settings, settings)
    return Models(answerer=answerer, judge=judge, judge_settings=judge_settings)


def build_chat_model(model: ModelSettings, settings: Settings) -> BaseChatModel:
    """One chat model; raises `ModelUnavailableError` when it cannot be built (missing GGUF, missing API key)."""
    if model.provider == "ollama":
        return _build_ollama(model)
    if model.provider == "openai":
        return _build_openai(model)
    return _build_llamacpp(model, settings)


def load_models(*chats: BaseChatModel) -> None:
    """Load embedded models now (a few seconds each); server models need nothing."""
    from rag_guard.embedded import ChatLlamaCpp

    for chat in chats:
        if isinstance(chat, ChatLlamaCpp):
            _ = chat.loaded


def guard_call_options(model: ModelSettings, top_logprobs: int, tokens: int = 1) -> dict[str, Any]:
    """Options for the judge's call: `tokens` generated (one, or a whole answer in single-pass mode), with
    the `top_logprobs` alternatives of each."""
    if model.provider == "ollama":
        # `options` replaces the model's whole option set, so it repeats the sampling settings.
        options = {**_ollama_options(model), "num_predict": tokens}
        return {"logprobs": True, "top_logprobs": top_logprobs, "options": options}
    return {"max_tokens": tokens, "logprobs": True, "top_logprobs": top_logprobs}


def token_counter(model: ModelSettings, chat: BaseChatModel) -> TokenCounter:
    """The embedded model counts with its own tokenizer; servers get an estimate.

    LangChain's counters for server models fetch a tokenizer from the internet (tiktoken, GPT-2), which
    fails offline and counts another model's tokens anyway.
    """
    if model.provider == "llamacpp":
        return chat.get_num_tokens_from_messages
    return estimate_tokens


def estimate_tokens(messages: Sequence[BaseMessage]) -> int:
    """A deliberately high estimate (3 characters per token): dropping a passage beats overflowing."""
    return sum(math.ceil(len(message.text) / 3) + _TOKENS_PER_MESSAGE for message in messages)


def _build_llamacpp(model: ModelSettings, settings: Settings) -> BaseChatModel:
    from rag_guard.embedded import ChatLlamaCpp
    from rag_guard.model_files import resolve_model_file

    return ChatLlamaCpp(
        model_path=resolve_model_file(model.preset, model.path, settings.cache_dir),
        n_ctx=model.n_ctx,
        n_threads=model.n_threads,
        max_tokens=model.max_tokens,
        temperature=model.temperature,
        seed=model.seed,
    )


def _ollama_options(model: ModelSettings) -> dict[str, Any]:
    return {
        "num_ctx": model.n_ctx,
        "num_predict": model.max_tokens,
        "temperature": model.temperature,
        "seed": model.seed,
    }


def _build_ollama(model: ModelSettings) -> BaseChatModel:
    import httpx
    from langchain_ollama import ChatOllama

    options = _ollama_options(model)
    return ChatOllama(
        model=model.name or "",
        base_url=model.url,
        num_ctx=options["num_ctx"],
        num_predict=options["num_predict"],
        temperature=options["temperature"],
        seed=options["seed"],
        client_kwargs={"timeout": model.timeout_s},
        # httpx retries failed connections itself; a reply that times out is not sent again.
        sync_client_kwargs={"transport": httpx.HTTPTransport(retries=model.max_retries)},
        async_client_kwargs={"transport": httpx.AsyncHTTPTransport(retries=model.max_retries)},
    )


def _build_openai(model: ModelSettings) -> BaseChatModel:
    from rag_guard.openai_compatible import ChatOpenAICompatible  # langchain-openai takes a second to import

    return ChatOpenAICompatible(
        model=model.name or "",
        base_url=model.url,
        api_key=_api_key(model),
        max_tokens=model.max_tokens,
        temperature=model.temperature,
        seed=model.seed,
        timeout=model.timeout_s,
        max_retries=model.max_retries,
    )


def _api_key(model: ModelSettings) -> str:
    key = os.environ.get(model.api_key_env, "").strip()
    if key:
        return key
    if is_loopback(model.url or ""):
        return _LOCAL_SERVER_KEY
    raise ModelUnavailableError(
        f"The OpenAI-compatible server at {model.url} needs an API key, and ${model.api_key_env} is not set. "
        f"Run `export {model.api_key_env}=...` (keys are read from the environment, never from config.yaml), "
        "or name another variable in model.api_key_env. A server that needs no key: set the variable to any text."
    )


def is_loopback(url: str) -> bool:
    """True for a server on this machine, which needs no API key."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
