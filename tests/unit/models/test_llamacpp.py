"""How the embedded model cuts a prompt into batches, and where a warm evaluation may resume (pure helpers)."""

from __future__ import annotations

from rag_guard.models.llamacpp import _batch_starts, _resume_point


def test_a_prompt_without_a_branch_is_cut_into_blocks_from_its_start():
    assert _batch_starts(150, 150) == [0, 64, 128]


def test_a_branch_starts_a_batch_of_its_own():
    assert _batch_starts(150, 100) == [0, 64, 100]
    assert _batch_starts(300, 100) == [0, 64, 100, 164, 228, 292]


def test_two_prompts_sharing_the_part_before_their_branches_resume_at_the_branch():
    extract, verdict = _batch_starts(140, 100), _batch_starts(170, 100)
    assert _resume_point(verdict, extract, limit=100) == 100


def test_resuming_stops_where_the_cached_prompt_was_cut_otherwise():
    """A cached prompt branched at 90 cut its block at 90: a prompt branching at 100 redoes that block."""
    assert _resume_point(_batch_starts(170, 100), _batch_starts(140, 90), limit=100) == 64


def test_resuming_never_passes_the_tokens_both_prompts_share():
    assert _resume_point(_batch_starts(300, 300), _batch_starts(300, 300), limit=150) == 128
    assert _resume_point(_batch_starts(300, 300), [], limit=299) == 0
