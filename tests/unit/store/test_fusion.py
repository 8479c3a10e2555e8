"""Reciprocal rank fusion: ranks from two searches merged into one order."""

from rag_guard.store.fusion import reciprocal_rank_fusion


def test_an_item_both_searches_rank_second_beats_the_items_a_single_search_ranks_first():
    assert reciprocal_rank_fusion([["a", "b", "c"], ["d", "b", "e"]]) == ["b", "a", "d", "c", "e"]


def test_an_item_found_by_one_search_still_comes_back_after_those_both_found():
    assert reciprocal_rank_fusion([["a", "b"], ["b", "z"]]) == ["b", "a", "z"]


def test_equal_scores_keep_the_order_the_items_were_first_met():
    assert reciprocal_rank_fusion([["a", "b"], ["b", "a"]]) == ["a", "b"]
    assert reciprocal_rank_fusion([["x"], ["y"]]) == ["x", "y"]


def test_no_rankings_or_empty_ones_give_nothing():
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
