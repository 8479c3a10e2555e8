"""rag_guard: gate RAG answers on the model's own probability that the retrieved context is sufficient.

What users import stands here; the subpackages hold the rest by concern: `judging` (the gate: the guard and
what it reads), `reply` (what the user reads after a verdict), `text` (word helpers both share), `models`
(the embedded model and server failures), `store` (corpus, embeddings, Chroma), `evaluation` (eval,
calibrate, fit-probe), `serving` (the OpenAI-compatible server, the agent middleware) and `cli`. `factory`
turns a config into objects; `errors` draws every exception's place in one tree.
"""

from typing import Any

from rag_guard.config import Settings, load_config
from rag_guard.errors import (
    ConfigError,
    CorpusError,
    GenerationError,
    GuardFailure,
    InvalidQuestionError,
    LogprobError,
    MissingExtraError,
    ModelUnavailableError,
    ProbeError,
    RagGuardError,
    ServerBusy,
    StoreBusyError,
    StoreUnavailableError,
)
from rag_guard.judging import Decision, ErrorInfo, SufficiencyGuard, Verdict
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply import AnswerCheck, GuardedAnswer, GuardedAnswerChunk, ReplySettings, Source, Timings

__all__ = [
    "AnswerCheck",
    "ConfigError",
    "CorpusError",
    "Decision",
    "ErrorInfo",
    "GenerationError",
    "GuardFailure",
    "GuardMiddleware",
    "GuardedAnswer",
    "GuardedAnswerChunk",
    "GuardedRAG",
    "InvalidQuestionError",
    "LogprobError",
    "MissingExtraError",
    "ModelUnavailableError",
    "ProbeError",
    "RagGuardError",
    "ReplySettings",
    "ServerBusy",
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
        from rag_guard.extras import require

        require("agents", "GuardMiddleware")
        from rag_guard.serving.middleware import GuardMiddleware

        return GuardMiddleware
    raise AttributeError(f"module 'rag_guard' has no attribute {name!r}")
