"""Build the chat model and the guard's call options from the config, per provider."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from rag_guard.config import Settings
from rag_guard.embedded import ChatLlamaCpp
from rag_guard.model_files import resolve_model_file


def build_chat_model(settings: Settings) -> BaseChatModel:
    """The answering model (also the judge, until a separate judge is configured)."""
    model = settings.model
    path = resolve_model_file(model.preset, model.path, settings.cache_dir)
    return ChatLlamaCpp(
        model_path=path,
        n_ctx=model.n_ctx,
        n_threads=model.n_threads,
        max_tokens=model.max_tokens,
        temperature=model.temperature,
        seed=model.seed,
    )
