"""Paired tests between two models scored on the same items: is the difference real?

Both models answered the same items, so each test resamples items jointly (a paired bootstrap) and,
for accuracy, counts only the items where exactly one of the two is right (McNemar's exact test).
Intervals are 95% percentile intervals of a seeded bootstrap: the same inputs give the same interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
SEED = 0


@dataclass(frozen=True)
class PairedTest:
    """`b` against `a`: the difference (b - a; for perplexity the ratio b / a), its 95% interval, and
    McNemar's exact p-value where the items are scored right or wrong (None otherwise)."""

    diff: float
    low: float
    high: float
    p: float | None = None

    @property
    def separable(self) -> bool:
        """Whether the interval excludes "no difference" (0 for accuracy, a ratio of 1 for perplexity)."""
        null = 1.0 if self.p is None else 0.0
        return not self.low <= null <= self.high

    def to_json(self) -> dict:
        return asdict(self)


def mcnemar_p(a: np.ndarray, b: np.ndarray) -> float:
    """McNemar's exact two-sided p-value: of the items exactly one model gets right, is the split 50/50?"""
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(b & ~a))
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_b, only_a + only_b, 0.5).pvalue)


def _interval(data: tuple[np.ndarray, ...], statistic, observed: float) -> tuple[float, float]:
    """The percentile interval of `statistic` over paired resamples of `data` (all items identical
    differences: the interval is that one value, which the bootstrap cannot spread)."""
    result = stats.bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=RESAMPLES,
                             confidence_level=CONFIDENCE, method="percentile", batch=1000,
                             rng=np.random.default_rng(SEED))
    low, high = result.confidence_interval
    if not np.isfinite(low) or not np.isfinite(high):
        return observed, observed
    return float(low), float(high)


def accuracy_test(a: list[int] | np.ndarray, b: list[int] | np.ndarray) -> PairedTest:
    """Accuracy of `b` minus accuracy of `a`, both 0/1 per item over the same items."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired accuracy needs two equal, non-empty item lists, got {a.shape} and {b.shape}")
    diff = float(b.mean() - a.mean())
    if np.all(a == b):
        return PairedTest(diff, diff, diff, 1.0)
    low, high = _interval((a.astype(float), b.astype(float)),
                          lambda x, y, axis: y.mean(axis=axis) - x.mean(axis=axis), diff)
    return PairedTest(diff, low, high, mcnemar_p(a, b))


def perplexity_test(a_loglikelihoods, b_loglikelihoods, counts) -> PairedTest:
    """Perplexity of `b` over perplexity of `a`, from each unit's (document, chunk, item) summed
    log-likelihood under both models and its size (words, tokens or 1): units resampled jointly."""
    a, b, n = (np.asarray(x, dtype=float) for x in (a_loglikelihoods, b_loglikelihoods, counts))
    if not a.shape == b.shape == n.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired perplexity needs equal, non-empty unit lists, got {a.shape}, {b.shape}, {n.shape}")

    def log_ratio(x, y, size, axis):
        return (x.sum(axis=axis) - y.sum(axis=axis)) / size.sum(axis=axis)

    observed = float(log_ratio(a, b, n, 0))
    if len(a) == 1 or np.array_equal(a, b):
        return PairedTest(float(np.exp(observed)), float(np.exp(observed)), float(np.exp(observed)))
    low, high = _interval((a, b, n), log_ratio, observed)
    return PairedTest(float(np.exp(observed)), float(np.exp(low)), float(np.exp(high)))
