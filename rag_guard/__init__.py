"""rag_guard: gate RAG answers on the model's own probability that the retrieved context is sufficient.

What users import stands here; the subpackages hold the rest by concern: `judging` (the guard and what it
reads), `models` (the embedded model and server failures), `store` (corpus, embeddings, Chroma),
`evaluation` (eval, calibrate, fit-probe) and `serving` (the OpenAI-compatible server, the agent
middleware). `factory` turns a config into objects.
"""

from typing import Any

from rag_guard.answers import GuardedAnswer, GuardedAnswerChunk, Source, Timings
from rag_guard.config import Settings, load_config
from rag_guard.errors import (
    ConfigError,
    CorpusError,
    GenerationError,
    GuardFailure,
    InvalidQuestionError,
    ModelUnavailableError,
    RagGuardError,
    StoreBusyError,
    StoreUnavailableError,
)
from rag_guard.judging import AnswerCheck, Decision, GuardError, SufficiencyGuard, Verdict
from rag_guard.pipeline import GuardedRAG

__all__ = [
    "AnswerCheck",
    "ConfigError",
    "CorpusError",
    "Decision",
    "GenerationError",
    "GuardError",
    "GuardFailure",
    "GuardMiddleware",
    "GuardedAnswer",
    "GuardedAnswerChunk",
    "GuardedRAG",
    "InvalidQuestionError",
    "ModelUnavailableError",
    "RagGuardError",
    "Settings",
    "Source",
    "StoreBusyError",
    "StoreUnavailableError",
    "SufficiencyGuard",
    "Timings",
    "Verdict",
    "load_config",
]


def __getattr__(name: str) -> Any:
    """`GuardMiddleware` on first use: it needs LangChain's agents (`pip install 'rag-guard[agents]'`)."""
    if name == "GuardMiddleware":
        from rag_guard.serving.middleware import GuardMiddleware

        return GuardMiddleware
    raise AttributeError(f"module 'rag_guard' has no attribute {name!r}")
