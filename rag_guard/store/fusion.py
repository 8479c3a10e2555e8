"""Merging rankings of the same chunks from different searches. Pure: no I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import TypeVar

Item = TypeVar("Item", bound=Hashable)

RRF_K = 60
"""The constant of reciprocal rank fusion (Cormack et al., 2009): large enough that a first place in one
ranking does not outweigh a good place in both."""


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Item]], k: int = RRF_K) -> list[Item]:
    """Every item of the rankings, best first, by the sum of 1 / (k + rank) over the rankings that hold it.

    Ranks, not scores, are fused: a cosine similarity and a BM25 score have no common scale. Ties keep the
    order in which the items were first met, so the result is deterministic.
    """
    score: defaultdict[Item, float] = defaultdict(float)
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            score[item] += 1.0 / (k + rank)
    return sorted(score, key=lambda item: -score[item])
