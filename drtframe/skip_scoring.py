"""Scorers that judge block j by a loss of the model with block j skipped (SLEB and its kin).

Skipping block j leaves blocks 0..j-1 untouched, so their work is shared: one forward per batch
caches the input of every block, and the candidate j then runs only blocks j+1.. from the cached
input of j. Per round that is L + L(L-1)/2 + 1 block forwards instead of L(L-1) for re-running the
whole model once per candidate; the iterative schedule pays it once per removal. The cache lives
for one batch, so memory grows with the batch, not with the calibration set. Option `cache=false`
re-runs the whole model per candidate instead: same scores, the reference to check the shortcut.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch

from .hidden_states import block_inputs, resumed_after
from .options import Options
from .scoring import Scorer, ScoringContext


class SkipOptions(Options):
    cache: bool = True


class SkipScorer(Scorer):
    """Base of scorers whose score of block j is a calibration loss with block j skipped.

    Subclasses implement `loss`; `score` runs the candidates (with the cache unless `cache=false`).
    """

    default_schedule: ClassVar[str] = "iterative"
    needs_calibration: ClassVar[bool] = True
    Options = SkipOptions

    @abstractmethod
    def loss(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """One loss per sample of the batch `ids`, shape (batch,), from the skipped model's logits."""

    @torch.inference_mode()
    def score(self, ctx: ScoringContext) -> list[float]:
        handle = ctx.handle
        totals = torch.zeros(handle.num_layers, dtype=torch.float64)
        samples = 0
        for ids in ctx.batches():
            cached = block_inputs(handle, ids) if self.options.cache else None
            for j in range(handle.num_layers):
                skipped = (resumed_after(handle, j, cached[j]) if cached is not None
                           else handle.temporarily_without((handle.kept[j],)))
                with skipped:
                    logits = handle.model(input_ids=ids, use_cache=False).logits
                totals[j] += self.loss(logits, ids).double().sum().cpu()
            samples += len(ids)
        return (totals / samples).tolist()
