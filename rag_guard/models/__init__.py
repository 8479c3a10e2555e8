"""Models: the embedded llama.cpp chat model, its GGUF presets and hidden-state capture, and how a server
client's failure reads to a user. Imports nothing of the package but its errors; `rag_guard.factory`
decides which model a config builds.
"""

from rag_guard.models.failures import explain_failure, explain_missing_logprobs, failure_kind
from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.models.presets import PRESETS, ModelPreset, ensure_preset, resolve_model_file
from rag_guard.models.servers import SERVER_DEFAULT_URLS

__all__ = [
    "PRESETS",
    "SERVER_DEFAULT_URLS",
    "ChatLlamaCpp",
    "ModelPreset",
    "ensure_preset",
    "explain_failure",
    "explain_missing_logprobs",
    "failure_kind",
    "resolve_model_file",
]
