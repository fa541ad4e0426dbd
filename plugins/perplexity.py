"""SLEB's scorer (Song et al. 2024): the calibration loss of the model with the block skipped.

Re-scored after every removal by default (the iterative schedule), as SLEB does; the shared work
of the candidates is cached by `drtframe.SkipScorer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from drtframe import SkipScorer, hookimpl


class Perplexity(SkipScorer):
    """SLEB: mean calibration NLL (log-perplexity) with the block skipped; iterative by default."""

    name = "perplexity"

    def loss(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Mean next-token NLL of each sample."""
        nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), ids[:, 1:], reduction="none")
        return nll.mean(-1)


@hookimpl
def drtframe_register_scorers(register):
    register(Perplexity)
