"""The study's statistics against values worked out by hand or published."""

from __future__ import annotations

import math

import pytest

from learnerfit.domain.stats import difference_interval, ranks, spearman, wilson


def test_wilson_intervals_match_published_values_and_stay_inside_0_1():
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)  # not the Wald interval's collapse to [0, 0]
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_the_difference_interval_is_newcombes_hybrid():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 against 48/80.
    assert difference_interval(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    low, high = difference_interval(3, 16, 3, 16)
    assert low < 0 < high and low == pytest.approx(-high)


def test_spearman_is_pearson_on_tie_averaged_ranks_and_refuses_too_few_points():
    assert ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)  # 1 - 6 * 4 / (5 * 24)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # Ties: ranks of y are [1, 2, 3.5, 5, 3.5]; Pearson on them by hand gives 0.8208.
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8208, abs=1e-4)
    assert spearman([1, 2], [2, 1]) is None
    assert spearman([1, 2, 3], [4, 4, 4]) is None
    with pytest.raises(ValueError, match="3 x values against 2"):
        spearman([1, 2, 3], [1, 2])


def test_a_paired_cluster_bootstrap_resamples_problems_and_holm_adjusts_the_pairs():
    from learnerfit.domain.stats import holm, paired_cluster_bootstrap

    # 20 problems x 4 samples, one seed each: arm a right on 3 of 4 everywhere, arm b on 1 of 4.
    a = [{f"p{i}": [True, True, False, True] for i in range(20)}]
    b = [{f"p{i}": [False, True, False, False] for i in range(20)}]
    result = paired_cluster_bootstrap(a, b, resamples=1000)
    assert result.difference == pytest.approx(0.5) and result.low == result.high == pytest.approx(0.5)
    assert result.p == pytest.approx(0.001) and result.se == 0  # the floor: 1 / resamples
    # Half the problems favour a, half b: the difference is 0 and nothing is resolved.
    mixed = [{f"p{i}": [i % 2 == 0] * 4 for i in range(20)}]
    flipped = [{f"p{i}": [i % 2 == 1] * 4 for i in range(20)}]
    result = paired_cluster_bootstrap(mixed, flipped, resamples=1000)
    assert result.difference == 0 and result.low < 0 < result.high and result.p > 0.5
    # Whole problems move together: one problem that a always gets right and b never moves the interval by a lot.
    one = [{**{f"p{i}": [False] * 4 for i in range(9)}, "p9": [True] * 4}]
    none = [{f"p{i}": [False] * 4 for i in range(10)}]
    result = paired_cluster_bootstrap(one, none, resamples=1000)
    assert result.difference == pytest.approx(0.1) and result.low == 0 and result.high >= 0.2
    with pytest.raises(ValueError, match="no held-out problem evaluated in both arms"):
        paired_cluster_bootstrap([{"p1": [True]}], [{"p2": [True]}])
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])


def test_training_seeds_widen_the_interval_by_what_two_checkpoints_of_one_set_differ():
    from learnerfit.domain.stats import accuracy_interval, paired_cluster_bootstrap

    # Every problem answered alike within a seed, so resampling problems alone sees no spread; the two seeds of
    # arm a differ by 0.5 (one checkpoint right everywhere, one nowhere), so the seed stage must show it.
    problems = [f"p{i}" for i in range(30)]
    a = [{p: [True] * 4 for p in problems}, {p: [False] * 4 for p in problems}]
    b = [{p: [False, True, False, True] for p in problems}] * 2
    result = paired_cluster_bootstrap(a, b, resamples=2000)
    assert result.difference == pytest.approx(0.0)  # a's mean over its seeds is 0.5, as b's
    assert result.low == pytest.approx(-0.5) and result.high == pytest.approx(0.5) and result.p > 0.5
    one_seed = paired_cluster_bootstrap(a[:1], b[:1], resamples=2000)
    assert one_seed.low == one_seed.high == pytest.approx(0.5) and one_seed.se == 0
    assert accuracy_interval(a) == pytest.approx((0.5, 0.0, 1.0))


def test_the_detectable_difference_is_the_power_formula_and_planning_reproduces_by_hand():
    from learnerfit.domain.stats import detectable_difference, planned_se

    # (z(1 - 0.05 / 2) + z(0.8)) x se = (1.95996 + 0.84162) x 0.05 for one pair; Bonferroni over 6 pairs: z(1-0.05/12)
    assert detectable_difference(0.05, 1) == pytest.approx(2.80158 * 0.05, abs=1e-4)
    assert detectable_difference(0.05, 6) == pytest.approx((2.63826 + 0.84162) * 0.05, abs=1e-4)
    # accuracy 0.4, 96 problems x 4, within-problem correlation 0.5, arms correlated 0.5, seed sd 0.03, 3 seeds:
    # per problem 0.24 x 2.5 / 4 = 0.15; evaluation 2 x 0.15 x 0.5 / 96; seeds 2 x 0.0009 / 3.
    assert planned_se(0.4, 96, 4, 3) == pytest.approx(math.sqrt(0.15 / 96 + 0.0006))
