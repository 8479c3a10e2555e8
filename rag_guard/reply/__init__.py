"""The reply: what the user reads after the gate's verdict, written once for the pipeline and the agent.

`policy.py` holds the steps (quote or written answer, tidying, the checks, the clarifying message, the
refusal or outage message); the other modules are the pure pieces it uses, and `answers.py` what it yields.
It imports the gate (`rag_guard.judging`) and nothing of the pipeline, configuration or factory.
"""

from rag_guard.reply.answers import GuardedAnswer, GuardedAnswerChunk, Source, Timings, merge_chunks
from rag_guard.reply.checks import AnswerCheck
from rag_guard.reply.policy import ReplyPolicy, ReplySettings
from rag_guard.reply.prompts import REFUSAL

__all__ = [
    "REFUSAL",
    "AnswerCheck",
    "GuardedAnswer",
    "GuardedAnswerChunk",
    "ReplyPolicy",
    "ReplySettings",
    "Source",
    "Timings",
    "merge_chunks",
]
