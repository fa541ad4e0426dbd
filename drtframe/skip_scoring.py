"""Scorers that judge block j by a loss of the model with block j skipped (SLEB and its kin).

Skipping block j leaves blocks 0..j-1 untouched, so their work is shared: one forward per batch
caches the input of every block, and the candidate j then runs only blocks j+1.. from the cached
input of j. Per round that is L + L(L-1)/2 + 1 block forwards instead of L(L-1) for re-running the
whole model once per candidate; the iterative schedule pays it once per removal. The cache lives
for one batch, so memory grows with the batch, not with the calibration set.

A float32 model ranks the candidates in a bfloat16 copy (about twice as fast on CPU), then measures
in float32 every candidate whose bfloat16 loss is within `recheck_within` of the best float32 loss
so far (`drtframe.scoring.rechecked`): the block a schedule removes, and its score, are float32's;
the other scores are bfloat16's. Option `bfloat16=false` measures every candidate in float32;
`cache=false` re-runs the whole model per candidate instead (same scores as `bfloat16=false`: the
reference that checks both shortcuts).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from typing import ClassVar

import torch

from .hidden_states import block_inputs, resumed_after
from .options import Options
from .scoring import Scorer, ScoringContext, rechecked


class SkipOptions(Options):
    cache: bool = True  # false: the whole model per candidate (the reference)
    bfloat16: bool = True  # rank in a bfloat16 copy of a float32 model, re-check the leaders in float32
    recheck_within: float = 0.02  # loss: how close to the best a bfloat16 candidate is re-checked


class SkipScorer(Scorer):
    """Base of scorers whose score of block j is a calibration loss with block j skipped.

    Subclasses implement `loss`; `score` runs the candidates (see the module for the shortcuts).
    """

    default_schedule: ClassVar[str] = "iterative"
    needs_calibration: ClassVar[bool] = True
    Options = SkipOptions

    @abstractmethod
    def loss(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """One loss per sample of the batch `ids`, shape (batch,), from the skipped model's logits."""

    def score(self, ctx: ScoringContext) -> list[float]:
        positions = list(range(ctx.handle.num_layers))
        ranking = ctx.handle.bfloat16_copy() if self.options.bfloat16 and self.options.cache else None
        if ranking is None:
            losses = self.losses(ctx, positions)
            return [losses[p] for p in positions]
        ranked = self.losses(replace(ctx, handle=ranking), positions)
        del ranking
        exact = rechecked(ranked, lambda close: self.losses(ctx, close), float, self.options.recheck_within)
        return [exact.get(p, ranked[p]) for p in positions]

    @torch.inference_mode()
    def losses(self, ctx: ScoringContext, positions: list[int]) -> dict[int, float]:
        """The mean calibration loss of `ctx.handle` without the block at each of `positions`."""
        handle = ctx.handle
        totals = torch.zeros(len(positions), dtype=torch.float64)
        samples = 0
        for ids in ctx.batches():
            cached = block_inputs(handle, ids) if self.options.cache else None
            for i, j in enumerate(positions):
                skipped = (resumed_after(handle, j, cached[j]) if cached is not None
                           else handle.temporarily_without((handle.kept[j],)))
                with skipped:
                    logits = handle.model(input_ids=ids, use_cache=False).logits
                totals[i] += self.loss(logits, ids).double().sum().cpu()
            samples += len(ids)
        return dict(zip(positions, (totals / samples).tolist()))
