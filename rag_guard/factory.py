"""Settings → objects: the one place that knows which backend is which.

Chat models (one builder per provider, each its real LangChain client: the embedded `ChatLlamaCpp`,
langchain-ollama's `ChatOllama`, langchain-openai's client for OpenAI-compatible servers), the judge's
one-token call options, the probe checked against the judge's GGUF, the guard, the reply settings, the
embeddings, the store and, from all of them, the pipeline (`build_pipeline`: `GuardedRAG.from_config`, and
through it `rag-guard eval` and the bench scripts, build there).
Whatever the provider, the judge's reply carries logprobs in `response_metadata["logprobs"]`, which
`judging.logprobs.parse_logprobs` reads in both shapes.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.retrievers import BaseRetriever

from rag_guard.config import ModelSettings, Settings, load_config
from rag_guard.conversation.rewrite import REWRITE_TOKENS
from rag_guard.errors import ConfigError, ModelUnavailableError
from rag_guard.judging import SufficiencyGuard
from rag_guard.judging.probe import (
    Probe,
    check_model,
    check_prompt,
    load_probe,
    no_probe_for,
    probe_path,
    unasked_calls,
)
from rag_guard.models.presets import PRESETS, sha256_of
from rag_guard.models.servers import SERVER_DEFAULT_URLS
from rag_guard.reply.policy import ReplySettings
from rag_guard.reply.quote import QUOTE_TOKENS
from rag_guard.store import (
    ChromaRetriever,
    ChromaSettings,
    EmbeddingSettings,
    embedding_label,
    ensure_ingested,
    local_embeddings,
    open_store,
)

TokenCounter = Callable[[Sequence[BaseMessage]], int]
P = TypeVar("P")

if TYPE_CHECKING:
    from langchain_chroma import Chroma

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
    from rag_guard.models.llamacpp import ChatLlamaCpp

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


def short_call_options(model: ModelSettings, tokens: int) -> dict[str, Any]:
    """Options for a short generation without logprobs (a follow-up's rewrite), in the provider's names."""
    if model.provider == "ollama":
        return {"options": {**_ollama_options(model), "num_predict": tokens}}
    return {"max_tokens": tokens}


def quote_options(settings: Settings) -> dict[str, Any]:
    """The judge's call options for a quote-first answer's few words (`reply/quote.py`)."""
    return guard_call_options(settings.judge, settings.guard.top_logprobs, tokens=QUOTE_TOKENS)


def reply_settings(settings: Settings) -> ReplySettings:
    """How replies are made, as config.yaml's `guard` section says."""
    return ReplySettings(
        grounding=settings.guard.grounding,
        answer_style=settings.guard.answer_style,
        quote_options=quote_options(settings),
        verify_answer=settings.guard.verify_answer,
        verify_threshold=settings.guard.verify_threshold,
    )


def max_concurrency(models: Models, settings: Settings) -> int:
    """Questions in flight at once: an embedded model runs one call at a time (interleaving questions would
    only evict each one's cached prefix between its verdict and its answer); servers take `concurrency`."""
    embedded = "llamacpp" in (settings.model.provider, models.judge_settings.provider)
    return 1 if embedded else min(settings.model.concurrency, models.judge_settings.concurrency)


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
    from rag_guard.models.llamacpp import ChatLlamaCpp
    from rag_guard.models.presets import resolve_model_file

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
    from rag_guard.models.openai_compatible import ChatOpenAICompatible  # langchain-openai takes a second to import

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


# --- the judge: its probe and the guard --------------------------------------------------------------


def model_identity(path: Path | None, preset: str) -> tuple[str, str]:
    """(sha256, description) of the GGUF a judge loads: a preset's is known, a file's is hashed (once per
    version of the file: hashing a GB takes seconds)."""
    if path is None:
        return PRESETS[preset].sha256, f"preset {preset} ({PRESETS[preset].description})"
    stat = path.stat()
    return _hashed(path.resolve(), stat.st_mtime_ns, stat.st_size), str(path)


@functools.lru_cache(maxsize=8)
def _hashed(path: Path, mtime_ns: int, size: int) -> str:
    return sha256_of(path)


def probe_for(settings: Settings) -> Probe:
    """The probe `guard.probe` names for the judge, checked against the GGUF the judge loads."""
    judge = settings.judge
    path = probe_path(settings.guard.probe, judge.path, judge.preset)
    if path is None:
        raise ConfigError(no_probe_for(judge.path, judge.preset))
    probe = load_probe(path)
    check_model(probe, path, *model_identity(judge.path, judge.preset))
    if unasked := unasked_calls(probe, settings.guard.signals):
        raise ConfigError(
            f"Probe {path} reads the hidden state of the {' and '.join(unasked)} call, which guard.signals "
            f"{sorted(settings.guard.signals)} do not make: add {' and '.join(unasked)} to guard.signals, or fit "
            "a probe on the verdict's state (`rag-guard fit-probe --calls verdict`)."
        )
    if settings.guard.calibration is None and set(probe.combination.weights) != set(settings.guard.signals):
        raise ConfigError(
            f"Probe {path} combines the signals {sorted(probe.combination.weights)}, but guard.signals is "
            f"{sorted(settings.guard.signals)}: set guard.signals to the probe's, or fit a calibration for yours "
            "with `rag-guard calibrate --write`."
        )
    check_prompt(probe, path, settings.guard.prompt_fingerprint)
    return probe


def build_guard(settings: Settings, judge: BaseChatModel, **overrides: Any) -> SufficiencyGuard:
    """The guard as config.yaml describes it, judging with `judge` (built from `guard.model` or `model`);
    `overrides` replace any of its fields.

    The documents it keeps also go into the answer prompt, so they must fit both models' windows.
    """
    judged_by = settings.judge
    fields: dict[str, Any] = {
        "judge": judge,
        "judge_kwargs": guard_call_options(judged_by, settings.guard.top_logprobs),
        "answer_threshold": settings.guard.answer_threshold,
        "clarify_threshold": settings.guard.clarify_threshold,
        "top_logprobs": settings.guard.top_logprobs,
        "context_window": min(judged_by.n_ctx, settings.model.n_ctx),
        "token_counter": token_counter(judged_by, judge),
        "reserve_tokens": settings.model.max_tokens + 96,
        "fail_mode": settings.guard.fail_mode,
        "signals": tuple(settings.guard.signals),
        "calibration": settings.guard.calibration,
        "instruction_first": settings.guard.instruction_first,
        "few_shot": settings.guard.few_shot,
        "judge_parts": settings.guard.judge_parts,
        "probe": probe_for(settings) if "probe" in settings.guard.signals else None,
        **({"instruction": settings.guard.prompt} if settings.guard.prompt else {}),
    }
    return SufficiencyGuard(**{**fields, **overrides})


# --- the store ----------------------------------------------------------------------------------------


def build_embeddings(settings: EmbeddingSettings, cache_dir: Path | None = None) -> Embeddings:
    """The configured embeddings: a local sentence-transformers model (on onnxruntime when it can, with
    `cache_dir` for its export), or an Ollama server's."""
    if settings.provider == "ollama":
        from langchain_ollama import OllamaEmbeddings

        return OllamaEmbeddings(model=settings.model or "", base_url=settings.base_url or SERVER_DEFAULT_URLS["ollama"])
    return local_embeddings(settings, cache_dir)


def open_configured_store(settings: Settings, chroma: ChromaSettings | None = None, **options: Any) -> Chroma:
    """The embedder and the Chroma collection config.yaml names (`chroma` replaces its section)."""
    embeddings = build_embeddings(settings.embeddings, settings.cache_dir)
    return open_store(chroma or settings.chroma, embeddings, embedding_label(settings.embeddings), **options)


def build_retriever(chroma: ChromaSettings, store: Chroma) -> ChromaRetriever:
    return ChromaRetriever(store=store, k=chroma.k, search=chroma.search, merge_adjacent=chroma.merge_adjacent)


def collection_retriever(settings: Settings, store: Chroma | None = None) -> ChromaRetriever:
    """The configured collection's retriever; a missing or empty collection is a `CorpusError`."""
    retriever = build_retriever(settings.chroma, store or open_configured_store(settings))
    ensure_ingested(retriever, settings.chroma)
    return retriever


# --- the pipeline -------------------------------------------------------------------------------------


def build_pipeline(
    kind: Callable[..., P],
    config: Settings | str | os.PathLike[str] | None = None,
    *,
    collection: str | None = None,
    retriever: BaseRetriever | None = None,
    guard_fields: Mapping[str, Any] | None = None,
    reply_fields: Mapping[str, Any] | None = None,
) -> P:
    """A pipeline of `kind` (`GuardedRAG`, whose `from_config` calls this) as config.yaml (or loaded
    `Settings`) describes it, answering from `collection` (default: `chroma.collection`; an empty one is a
    `CorpusError`), its embedded models loaded; or from `retriever` when one is given (`rag-guard eval` hands
    each question its own passages), the models then loading on first use. `guard_fields` and `reply_fields`
    replace any of the guard's and the reply settings' fields.

    The embedder and the store open in a thread while the GGUF loads in the caller's: llama.cpp silences the
    process's stdout and stderr while it loads, so the load must not outlast the caller's own work, or an
    error the caller prints meanwhile is lost.
    """
    settings = (config if isinstance(config, Settings) else load_config(config)).with_collection(collection)
    models = build_models(settings)
    if retriever is None:
        with ThreadPoolExecutor(1, thread_name_prefix="rag-guard-open-store") as pool:
            opening = pool.submit(open_configured_store, settings)
            load_models(models.judge, models.answerer)
            retriever = collection_retriever(settings, opening.result())
    return kind(
        retriever=retriever,
        guard=build_guard(settings, models.judge, **(guard_fields or {})),
        answerer=models.answerer,
        reply=reply_settings(settings).model_copy(update=dict(reply_fields or {})),
        single_pass=settings.guard.mode == "single_pass",
        single_pass_options=guard_call_options(
            settings.model, settings.guard.top_logprobs, tokens=settings.model.max_tokens + 1
        ),
        rewrite_options=short_call_options(settings.model, REWRITE_TOKENS),
        max_concurrency=max_concurrency(models, settings),
    )
