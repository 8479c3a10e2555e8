"""Why a model call failed, in words a user can act on: which server, which model, what to run.

The guard and `rag-guard doctor` turn client exceptions (openai, ollama, httpx, LangChain's standard
`Model*Error`s) into one sentence each; the guard then refuses with that sentence as its reason.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from langchain_core.exceptions import (
    ModelAuthenticationError,
    ModelConnectionError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelTimeoutError,
)
from langchain_core.language_models import BaseChatModel

from rag_guard.models.servers import SERVER_DEFAULT_URLS


@cache
def _kinds() -> dict[str, tuple[type[BaseException], ...]]:
    """The client exceptions each explanation covers. Imported when a call has failed, not at start-up:
    importing the openai client alone takes about a second."""
    import httpx
    import openai

    return {
        "timeout": (ModelTimeoutError, openai.APITimeoutError, httpx.TimeoutException, TimeoutError),
        "unreachable": (ModelConnectionError, openai.APIConnectionError, httpx.TransportError, ConnectionError),
        "not_found": (ModelNotFoundError, openai.NotFoundError),
        "denied": (
            ModelAuthenticationError,
            ModelPermissionDeniedError,
            openai.AuthenticationError,
            openai.PermissionDeniedError,
        ),
    }


def _imported(module: str, name: str) -> Any:
    """A client class if its module is loaded; a chat model of that class implies it is, so a guard on the
    embedded model never imports the server clients just to tell it is not one."""
    return getattr(sys.modules.get(module), name, None)


@dataclass(frozen=True)
class Target:
    """What a chat model talks to, read off the LangChain client."""

    provider: str
    name: str
    url: str | None = None
    timeout_s: float | None = None
    retries: int | None = None

    @property
    def server(self) -> str:
        if self.url is None:
            return f"the {self.provider} model {self.name!r}"
        kind = {"ollama": "Ollama server", "openai": "OpenAI-compatible server"}.get(self.provider, "server")
        return f"the {kind} at {self.url}"


def target_of(chat: BaseChatModel) -> Target:
    ollama_chat = _imported("langchain_ollama.chat_models", "ChatOllama")
    openai_chat = _imported("langchain_openai.chat_models.base", "BaseChatOpenAI")
    if ollama_chat is not None and isinstance(chat, ollama_chat):
        timeout = (chat.client_kwargs or {}).get("timeout")
        return Target("ollama", chat.model, chat.base_url or SERVER_DEFAULT_URLS["ollama"], _seconds(timeout))
    if openai_chat is not None and isinstance(chat, openai_chat):
        url = chat.openai_api_base or SERVER_DEFAULT_URLS["openai"]
        return Target("openai", chat.model_name, url, _seconds(chat.request_timeout), chat.max_retries)
    name = getattr(chat, "model_path", None) or getattr(chat, "model", None) or type(chat).__name__
    return Target(chat._llm_type, str(name))


FailureKind = Literal["timeout", "unreachable", "not_found", "denied", "server_error", "call_failed"]


def failure_kind(exc: BaseException) -> FailureKind:
    """Which kind of failure a model call raised, for callers that act on it (an exit code, readiness)."""
    kinds = _kinds()
    for kind in ("timeout", "unreachable", "not_found", "denied"):
        if isinstance(exc, kinds[kind]):
            return kind  # type: ignore[return-value]
    status = getattr(exc, "status_code", None)
    if status == 404:
        return "not_found"
    if status in (401, 403):
        return "denied"
    ollama_error = _imported("ollama", "ResponseError")
    return "server_error" if ollama_error is not None and isinstance(exc, ollama_error) else "call_failed"


def explain_failure(exc: BaseException, chat: BaseChatModel) -> str:
    """One sentence: what failed and how to fix it."""
    target = target_of(chat)
    kind = failure_kind(exc)
    if kind == "timeout":
        within = f"within {target.timeout_s:g} s" if target.timeout_s else "in time"
        retried = f" (tried {1 + target.retries} times)" if target.retries else ""
        return (
            f"{target.server} did not reply {within}{retried}: raise model.timeout_s, "
            "or check that the server is not overloaded"
        )
    if kind == "unreachable":
        if target.provider == "ollama":
            how = "start it with `ollama serve`"
        else:
            how = "start it (llama.cpp: `python -m llama_cpp.server --model FILE.gguf --port PORT`)"
        return f"cannot reach {target.server}: {how}, or fix model.base_url"
    if kind == "not_found":
        if target.provider == "ollama":
            return f"model {target.name!r} is not on {target.server}: run `ollama pull {target.name}`"
        return f"{target.server} has no model {target.name!r}: set model.name to one it serves ({target.url}/models)"
    if kind == "denied":
        return f"{target.server} rejected the API key: check the variable that model.api_key_env names"
    if kind == "server_error":
        return f"{target.server} replied with an error: {exc.error} (HTTP {getattr(exc, 'status_code', None)})"  # type: ignore[attr-defined]
    return f"the {target.provider} model call failed ({type(exc).__name__}: {exc})"


def explain_missing_logprobs(chat: BaseChatModel) -> str:
    """Why a reply came back without logprobs, and what to use instead."""
    target = target_of(chat)
    if target.provider == "ollama":
        return (
            f"{target.server} returned no logprobs for {target.name!r}: Ollama returns them from version 0.12.11 "
            "on; upgrade it (`ollama --version` shows yours)"
        )
    if target.provider == "openai":
        return (
            f"{target.server} returned no logprobs for {target.name!r}: use a server and model that return them "
            "(OpenAI's GPT-4o family, DeepSeek's deepseek-chat, vLLM, llama.cpp's server; not reasoning models)"
        )
    return f"{target.server} returned no logprobs"


def _seconds(timeout: object) -> float | None:
    if isinstance(timeout, int | float):
        return float(timeout)
    read = getattr(timeout, "read", None)
    return float(read) if isinstance(read, int | float) else None
