"""The gate: is this context sufficient to answer this question? The guard and everything it reads.

Pure logic around one chat model: the judge's prompts, logprob maths, signals, the probe's read-out, the
calibration map and the decision. What the user reads after a verdict is `rag_guard.reply`'s; this package
imports nothing of it, no configuration and no concrete backend (`rag_guard.factory` wires those in).
"""

from rag_guard.judging.calibration import Calibration
from rag_guard.judging.decision import Decision, decide, decide_with_probe
from rag_guard.judging.guard import GuardInput, SufficiencyGuard, verdict_from_reply
from rag_guard.judging.logprobs import LogprobError, TokenLogprob, p_true, parse_logprobs
from rag_guard.judging.probe import Probe, ProbeError, load_probe
from rag_guard.judging.question import MAX_QUESTION_CHARS, Question, clean_question
from rag_guard.judging.signals import GateSignal, Signals
from rag_guard.judging.verdict import ErrorInfo, Verdict

__all__ = [
    "MAX_QUESTION_CHARS",
    "Calibration",
    "Decision",
    "ErrorInfo",
    "GateSignal",
    "GuardInput",
    "LogprobError",
    "Probe",
    "ProbeError",
    "Question",
    "Signals",
    "SufficiencyGuard",
    "TokenLogprob",
    "Verdict",
    "clean_question",
    "decide",
    "decide_with_probe",
    "load_probe",
    "p_true",
    "parse_logprobs",
    "verdict_from_reply",
]
