"""The per-layer decision profile (accuracy, Decision Margin, Option Frequency) and its transition.

p_l = softmax over choices of the per-layer choice scores. DM_l = p_l(gold) - max over wrong
options of p_l, averaged over items. OF_l(o) = share of items whose top option at layer l is
option position o; its entropy (bits) is low when the lens piles onto one option.

Transition rule. The baseline b is the accuracy of the best constant answer (always option o) on
these items, the floor any readout that ignores the question reaches. The model decides if its
final accuracy beats b by more than two standard errors; otherwise there is no transition and none
is invented. If it decides, l* is the least-squares single change point of the lens accuracy over
layers: the split [0, l*) | [l*, L) whose two-level step (each phase at its mean accuracy) fits
the accuracy curve best, among splits where the later level is the higher. One layer that dips or
spikes moves a step fit little, where a threshold crossing would jump (a dip below a threshold two
layers before the end used to put l* there). Silent Phase = [0, l*), Decisive Phase = [l*, L); the
two fitted levels are reported with it. The interval is the 5th-95th percentile of l* over
bootstrap resamples of the items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

BOOTSTRAP = 1000
BOOTSTRAP_CELLS = 1 << 24  # resampled (item, layer) entries judged at once: memory, not results


@dataclass(frozen=True)
class Transition:
    layer: int | None
    interval: tuple[int, int] | None
    baseline: float
    levels: tuple[float | None, float] | None  # mean lens accuracy in the Silent (None if empty) and Decisive Phase


@dataclass(frozen=True)
class DecisionProfile:
    """Per-layer decision metrics over `n` items with at most `num_options` choices."""

    acc: tuple[float, ...]
    decision_margin: tuple[float, ...]
    option_frequency: tuple[tuple[float, ...], ...]
    entropy: tuple[float, ...]
    transition: Transition
    n: int

    @property
    def num_layers(self) -> int:
        return len(self.acc)

    @property
    def silent_phase(self) -> list[int]:
        t = self.transition.layer
        return list(range(t)) if t is not None else list(range(self.num_layers))

    @property
    def decisive_phase(self) -> list[int]:
        t = self.transition.layer
        return list(range(t, self.num_layers)) if t is not None else []


def probabilities(scores: list[torch.Tensor]) -> list[np.ndarray]:
    """Per item, p as a (layers, choices) array: softmax over choices of each layer's scores."""
    return [torch.softmax(s.double().T, dim=-1).numpy() for s in scores]


def change_point(acc: np.ndarray) -> int:
    """The split t (1 <= t < L) whose two-level step fits `acc` with least squares, the later level higher.

    0 when no split has a higher later level (the curve never rises: decided from the first layer).
    """
    return int(change_points(acc[None])[0])


def change_points(acc: np.ndarray) -> np.ndarray:
    """`change_point` of each row of the (curves, L) array `acc`."""
    n = acc.shape[1]
    if n < 2:
        return np.zeros(len(acc), dtype=int)
    t = np.arange(1, n)
    head, total = np.cumsum(acc, axis=1)[:, :-1], acc.sum(axis=1, keepdims=True)
    before, after = head / t, (total - head) / (n - t)
    # Squared error of the step = sum of squares - t * before^2 - (n - t) * after^2; the first term is fixed.
    fit = t * before ** 2 + (n - t) * after ** 2
    rising = after - before > 1e-9  # means from cumulative sums: equal levels may differ by rounding
    best = t[np.argmax(np.where(rising, fit, -np.inf), axis=1)]
    return np.where(rising.any(axis=1), best, 0)


def _transition_layers(correct: np.ndarray, gold: np.ndarray, num_options: int) -> tuple[np.ndarray, np.ndarray]:
    """l* (-1: no transition) and the baseline of each of a stack of (items, layers) correctness matrices,
    `correct` (stack, items, layers) with `gold` (stack, items): the bootstrap's resamples in one pass
    (24 -> 7 ms per profile of up to 150 items). See the module docstring for the rule."""
    acc = correct.mean(axis=1)
    baseline = np.max([np.mean(gold == o, axis=1) for o in range(num_options)], axis=0)
    final = acc[:, -1]
    stderr = np.sqrt(np.maximum(final * (1 - final), 1e-12) / max(gold.shape[1] - 1, 1))
    return np.where(final - baseline > 2 * stderr, change_points(acc), -1), baseline


def decision_profile(scores: list[torch.Tensor], gold: list[int], seed: int = 0) -> DecisionProfile:
    """The profile of items whose per-layer choice scores are `scores` (each (choices, layers))."""
    probs = probabilities(scores)
    num_layers = probs[0].shape[0]
    num_options = max(p.shape[1] for p in probs)
    gold_arr = np.array(gold)
    top = np.stack([p.argmax(axis=1) for p in probs])  # (items, layers)
    correct = top == gold_arr[:, None]
    margins = np.stack([p[:, g] - np.delete(p, g, axis=1).max(axis=1) for p, g in zip(probs, gold)])
    freq = np.stack([(top == o).mean(axis=0) for o in range(num_options)], axis=1)  # (layers, options)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(freq > 0, freq * np.log2(freq), 0.0), axis=1)

    acc = correct.mean(axis=0)
    found, baselines = _transition_layers(correct[None], gold_arr[None], num_options)
    layer, baseline = (int(found[0]) if found[0] >= 0 else None), float(baselines[0])
    interval = None
    if layer is not None:
        rng, draws = np.random.default_rng(seed), []
        stack = max(1, BOOTSTRAP_CELLS // correct.size)  # all 1,000 at once: 0.45 GB for 14k MMLU items x 32 layers
        for start in range(0, BOOTSTRAP, stack):
            picks = np.stack([rng.integers(0, len(gold), len(gold)) for _ in range(min(stack, BOOTSTRAP - start))])
            draws.append(_transition_layers(correct[picks], gold_arr[picks], num_options)[0])
        draws = np.concatenate(draws)
        low, high = np.percentile(np.where(draws < 0, num_layers, draws), [5, 95])
        interval = (int(math.floor(low)), int(math.ceil(high)))
    levels = None
    if layer is not None:
        levels = (float(acc[:layer].mean()) if layer else None, float(acc[layer:].mean()))
    return DecisionProfile(tuple(acc.tolist()), tuple(margins.mean(axis=0).tolist()),
                           tuple(tuple(row) for row in freq.tolist()), tuple(entropy.tolist()),
                           Transition(layer, interval, baseline, levels), len(gold))
