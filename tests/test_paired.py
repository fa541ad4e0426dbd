"""Paired significance and agreement: against scipy's exact binomial test and on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from drtframe.comparison.agreement import agreement
from drtframe.comparison.paired import accuracy_test, mcnemar_p, perplexity_test


def _two_sided_binomial(k: int, n: int) -> float:
    """The exact McNemar p-value written out: twice the smaller binomial tail, at most 1."""
    return min(1.0, 2 * stats.binom.cdf(min(k, n - k), n, 0.5))


@pytest.mark.parametrize("only_a,only_b,both", [(3, 12, 40), (10, 10, 5), (0, 7, 3), (25, 14, 60), (1, 0, 9)])
def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_items(only_a, only_b, both):
    a = np.array([1] * only_a + [0] * only_b + [1] * both + [0] * 11, dtype=bool)
    b = np.array([0] * only_a + [1] * only_b + [1] * both + [0] * 11, dtype=bool)
    expected = stats.binomtest(only_b, only_a + only_b, 0.5).pvalue
    assert mcnemar_p(a, b) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_p(a, b) == pytest.approx(_two_sided_binomial(only_b, only_a + only_b), rel=1e-9)
    assert accuracy_test(a, b).p == mcnemar_p(a, b)


def test_identical_answers_differ_by_nothing():
    a = np.random.default_rng(1).random(200) < 0.5
    test = accuracy_test(a, a)
    assert (test.diff, test.low, test.high, test.p) == (0.0, 0.0, 0.0, 1.0)
    assert not test.separable


def test_a_clearly_better_model_is_separable_and_the_interval_holds_the_difference():
    rng = np.random.default_rng(2)
    a = rng.random(1000) < 0.45
    b = a | (rng.random(1000) < 0.2)  # b keeps a's right answers and gets about 11% more
    test = accuracy_test(a, b)
    assert test.diff == pytest.approx(b.mean() - a.mean())
    assert 0 < test.low < test.diff < test.high
    assert test.p < 1e-10 and test.separable
    # the bootstrap's spread matches the normal approximation of a paired difference
    se = np.std(b.astype(float) - a.astype(float), ddof=1) / math.sqrt(len(a))
    assert test.high - test.low == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_two_models_of_equal_skill_are_not_separated():
    rng = np.random.default_rng(3)
    a, b = rng.random(2000) < 0.5, rng.random(2000) < 0.5
    test = accuracy_test(a, b)
    assert test.low < 0 < test.high and not test.separable and test.p > 0.05


def test_the_bootstrap_is_seeded():
    rng = np.random.default_rng(4)
    a, b = rng.random(300) < 0.6, rng.random(300) < 0.5
    assert accuracy_test(a, b) == accuracy_test(list(a), list(b))


def test_perplexity_ratio_is_exact_and_a_uniform_shift_has_no_spread():
    rng = np.random.default_rng(5)
    counts = rng.integers(50, 500, size=40).astype(float)
    a = -counts * rng.uniform(2.0, 3.0, size=40)
    b = a - 0.1 * counts  # every unit loses 0.1 nats per token: the ratio is exp(0.1) in every resample
    test = perplexity_test(a, b, counts)
    assert test.diff == pytest.approx(math.exp(0.1), rel=1e-12)
    assert test.low == pytest.approx(math.exp(0.1), rel=1e-9) and test.high == pytest.approx(math.exp(0.1), rel=1e-9)
    assert test.p is None and test.separable
    noisy = perplexity_test(a, a + rng.normal(0, 5, size=40), counts)
    assert noisy.low < noisy.diff < noisy.high
    assert not perplexity_test(a, a, counts).separable


def test_agreement_counts_flips_both_ways_and_the_kl_of_the_choice_distributions():
    dense = [[-1.0, -2.0], [-3.0, -1.0], [-1.0, -2.0, -3.0], [-2.0, -1.0]]
    pruned = [[-2.0, -1.0], [-1.0, -3.0], [-1.0, -2.0, -3.0], [-1.0, -5.0]]
    gold = [0, 0, 0, 1]
    # item 0: right -> wrong; item 1: wrong -> right; item 2 unchanged; item 3: right -> wrong
    result = agreement(dense, pruned, gold)
    assert result["flips"] == 0.75
    assert result["correct_to_wrong"] == 0.5 and result["wrong_to_correct"] == 0.25

    def kl(p, q):
        p, q = np.exp(p) / np.exp(p).sum(), np.exp(q) / np.exp(q).sum()
        return float(np.sum(p * np.log(p / q)))

    assert result["kl"] == pytest.approx(np.mean([kl(np.array(d), np.array(s)) for d, s in zip(dense, pruned)]))
    assert agreement(dense, dense, gold) == {"flips": 0.0, "correct_to_wrong": 0.0, "wrong_to_correct": 0.0, "kl": 0.0}
