"""rag_guard: gate RAG answers on the model's own probability that the retrieved context is sufficient."""

from rag_guard.config import Settings, load_config
from rag_guard.decision import Decision
from rag_guard.guard import SufficiencyGuard
from rag_guard.pipeline import GuardedRAG
from rag_guard.results import GuardedAnswer, GuardedAnswerChunk, Verdict

__all__ = [
    "Decision",
    "GuardedAnswer",
    "GuardedAnswerChunk",
    "GuardedRAG",
    "Settings",
    "SufficiencyGuard",
    "Verdict",
    "load_config",
]
