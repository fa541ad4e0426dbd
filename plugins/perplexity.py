"""SLEB's scorer (Song et al. 2024): the calibration loss of the model with the block skipped.

Re-scored after every removal by default (the iterative schedule), as SLEB does; the shared work
of the candidates is cached by `drtframe.SkipScorer`.
"""

from __future__ import annotations

import torch

from drtframe import SkipScorer, hookimpl, row_logsumexp


class Perplexity(SkipScorer):
    """SLEB: mean calibration NLL (log-perplexity) with the block skipped; iterative by default."""

    name = "perplexity"

    def loss(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Mean next-token NLL of each sample: logsumexp minus the target's logit. The logits are read a
        few rows at a time (`row_logsumexp`): per batch of 8 x 256 bfloat16 logits 138 ms, against
        310 ms for `torch.logsumexp` on the whole batch (cross_entropy on the transposed view: 4.8x that)."""
        lse = row_logsumexp(logits.reshape(-1, logits.shape[-1])).view(logits.shape[:-1])[:, :-1]
        target = logits[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
        return (lse - target.float()).mean(-1)


@hookimpl
def drtframe_register_scorers(register):
    register(Perplexity)
