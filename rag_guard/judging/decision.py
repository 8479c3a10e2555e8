"""Thresholds → answer / clarify / refuse. Pure, so the gate's behaviour is pinned by fast tests."""

from __future__ import annotations

import math
from enum import StrEnum


class Decision(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    REFUSE = "refuse"


def check_thresholds(answer_threshold: float, clarify_threshold: float) -> None:
    """The thresholds' one rule, 0 <= clarify <= answer <= 1, for the guard, config.yaml and `decide` alike;
    a `ValueError` that names both otherwise."""
    if not 0.0 <= clarify_threshold <= 1.0 or not 0.0 <= answer_threshold <= 1.0:
        raise ValueError(
            f"thresholds must lie between 0 and 1 (answer_threshold {answer_threshold}, "
            f"clarify_threshold {clarify_threshold})"
        )
    if clarify_threshold > answer_threshold:
        raise ValueError(
            f"clarify_threshold ({clarify_threshold}) must not exceed answer_threshold ({answer_threshold})"
        )


def decide(p_sufficient: float | None, answer_threshold: float, clarify_threshold: float) -> Decision:
    """Answer at or above `answer_threshold`, clarify at or above `clarify_threshold`, else refuse.

    A missing or non-finite probability refuses: the guard fails closed.
    """
    check_thresholds(answer_threshold, clarify_threshold)
    if p_sufficient is None or not math.isfinite(p_sufficient):
        return Decision.REFUSE
    if p_sufficient >= answer_threshold:
        return Decision.ANSWER
    if p_sufficient >= clarify_threshold:
        return Decision.CLARIFY
    return Decision.REFUSE


def decide_with_probe(
    p_sufficient: float | None, prompt_level: float, answer_threshold: float, clarify_threshold: float
) -> Decision:
    """`decide` on the probe's capped score, except that the probe's doubt asks rather than refuses: a
    question the prompt-level score alone (the verdict and the answer start) would answer or clarify is
    clarified at worst.

    The probe separates near misses better than the token, but it pushes partly covered questions down to
    where off-topic ones are, while the prompt-level score keeps the two apart (docs/studies/probe.md); a
    clarifying message, which states nothing the passages lack, is the right reply to the first.
    """
    decision = decide(p_sufficient, answer_threshold, clarify_threshold)
    measured = p_sufficient is not None and math.isfinite(p_sufficient)  # no probability refuses, always
    if decision is Decision.REFUSE and measured and prompt_level >= clarify_threshold:
        return Decision.CLARIFY
    return decision
