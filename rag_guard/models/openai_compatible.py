"""The chat client for OpenAI-compatible servers, kept apart so that only that provider imports langchain-openai."""

from __future__ import annotations

from langchain_openai.chat_models.base import BaseChatOpenAI


class ChatOpenAICompatible(BaseChatOpenAI):
    """langchain-openai's chat client for any OpenAI-compatible server.

    `ChatOpenAI` renames `max_tokens` to `max_completion_tokens`, which llama.cpp's server ignores, so the
    one-token guard call would generate a whole reply there. Its base class sends `max_tokens`, which
    llama.cpp, vLLM, DeepSeek and Ollama's /v1 honour, and OpenAI accepts for every model that has logprobs.
    """

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"
