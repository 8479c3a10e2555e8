"""Thresholds → answer / clarify / refuse. Pure, so the gate's behaviour is pinned by fast tests."""

from __future__ import annotations

import math
from enum import StrEnum


class Decision(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    REFUSE = "refuse"


def decide(p_sufficient: float | None, answer_threshold: float, clarify_threshold: float) -> Decision:
    """Answer at or above `answer_threshold`, clarify at or above `clarify_threshold`, else refuse.

    A missing or non-finite probability refuses: the guard fails closed.
    """
    if not 0.0 <= clarify_threshold <= answer_threshold <= 1.0:
        raise ValueError(
            f"thresholds must satisfy 0 <= clarify ({clarify_threshold}) <= answer ({answer_threshold}) <= 1"
        )
    if p_sufficient is None or not math.isfinite(p_sufficient):
        return Decision.REFUSE
    if p_sufficient >= answer_threshold:
        return Decision.ANSWER
    if p_sufficient >= clarify_threshold:
        return Decision.CLARIFY
    return Decision.REFUSE
