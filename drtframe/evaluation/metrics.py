"""acc and acc_norm with lm-eval's standard errors, and its size-weighted group aggregation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """Accuracy metrics of one benchmark (or group) over `n` items."""

    acc: float
    acc_stderr: float
    acc_norm: float
    acc_norm_stderr: float
    n: int


def mean_stderr(values: Sequence[float]) -> float:
    """lm-eval's `mean_stderr`: sample standard deviation (n - 1) over sqrt(n)."""
    n = len(values)
    if n < 2:
        return float("nan")
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def score(correct: Sequence[bool], correct_norm: Sequence[bool]) -> Score:
    acc = [float(c) for c in correct]
    norm = [float(c) for c in correct_norm]
    n = len(acc)
    return Score(sum(acc) / n, mean_stderr(acc), sum(norm) / n, mean_stderr(norm), n)


def pooled_stderr(stderrs: Sequence[float], sizes: Sequence[int]) -> float:
    """lm-eval's `pooled_sample_stderr`, used for groups weighted by size."""
    pooled_var = sum((n - 1) * s ** 2 * n for s, n in zip(stderrs, sizes)) / (sum(sizes) - len(sizes))
    return math.sqrt(pooled_var / sum(sizes))


def aggregate(scores: Sequence[Score]) -> Score:
    """Size-weighted mean of member scores with pooled standard errors (lm-eval weight_by_size)."""
    sizes = [s.n for s in scores]
    total = sum(sizes)
    return Score(
        sum(s.acc * s.n for s in scores) / total, pooled_stderr([s.acc_stderr for s in scores], sizes),
        sum(s.acc_norm * s.n for s in scores) / total, pooled_stderr([s.acc_norm_stderr for s in scores], sizes),
        total,
    )
