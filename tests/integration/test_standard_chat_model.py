"""LangChain's standard integration suite for chat models, run against ChatLlamaCpp on the small preset. The
features it declares unsupported (tool calling, structured output, JSON mode, multimodal inputs) are listed in
the README."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.models.presets import PRESETS, ensure_preset
from tests.integration.conftest import CACHE

pytestmark = pytest.mark.integration


class TestChatLlamaCppStandard(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatLlamaCpp]:
        return ChatLlamaCpp

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_path": ensure_preset(PRESETS["small"], CACHE), "n_ctx": 2048, "temperature": 0}

    @property
    def supports_model_override(self) -> bool:
        return False  # one instance runs the one GGUF it loaded
