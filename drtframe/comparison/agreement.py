"""How far a pruned model's answers moved from the dense model's, beyond what accuracy shows.

Two models with equal accuracy can disagree on many items (Dutta et al. 2024, "Accuracy is Not All
You Need"): the share of flipped answers and the KL divergence between the two distributions over
the choices tell how much of the dense model's behaviour a pruned one kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import log_softmax


def chosen(loglikelihoods: Sequence[Sequence[float]]) -> np.ndarray:
    """Per item, the choice acc takes: the highest log-likelihood, the first of equals."""
    return np.array([int(np.argmax(lls)) for lls in loglikelihoods])


def agreement(dense: Sequence[Sequence[float]], pruned: Sequence[Sequence[float]], gold: Sequence[int]) -> dict:
    """Per-item comparison of two models' per-choice log-likelihoods on the same items.

    flips: share of items whose chosen answer differs; correct_to_wrong / wrong_to_correct: the shares
    whose answer went from right to wrong and back (a wrong answer can also flip to another wrong one);
    kl: mean over items of KL(dense || pruned) between the softmax over the choices' log-likelihoods.
    """
    if len(dense) != len(pruned) or len(dense) != len(gold) or not dense:
        raise ValueError("agreement needs both models' scores on the same, non-empty items")
    before, after, answer = chosen(dense), chosen(pruned), np.asarray(gold)
    right_before, right_after = before == answer, after == answer
    kl = [float(np.sum(np.exp(p) * (p - q))) for p, q in
          ((log_softmax(np.asarray(d, dtype=float)), log_softmax(np.asarray(s, dtype=float)))
           for d, s in zip(dense, pruned))]
    return {"flips": float(np.mean(before != after)),
            "correct_to_wrong": float(np.mean(right_before & ~right_after)),
            "wrong_to_correct": float(np.mean(~right_before & right_after)),
            "kl": max(0.0, float(np.mean(kl)))}  # KL >= 0: a negative mean is float rounding of identical answers
