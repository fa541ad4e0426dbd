"""Baseline scorers that look at no data: reverse order (Lu et al. 2024) and seeded random."""

from __future__ import annotations

import random

from drtframe import Options, Scorer, ScoringContext, hookimpl


class ReverseOrder(Scorer):
    """Drop the highest-indexed blocks first (Lu et al. 2024, 'Reassessing Layer Pruning')."""

    name = "reverse_order"

    def score(self, ctx: ScoringContext) -> list[float]:
        return [-float(i) for i in ctx.handle.kept]


class RandomOptions(Options):
    seed: int = 0


class RandomScorer(Scorer):
    """Seeded random removal: the floor any real method must beat."""

    name = "random"
    Options = RandomOptions

    def score(self, ctx: ScoringContext) -> list[float]:
        rng = random.Random(f"{self.options.seed}:{','.join(map(str, ctx.handle.kept))}")
        return [rng.random() for _ in ctx.handle.kept]


@hookimpl
def drtframe_register_scorers(register):
    register(ReverseOrder)
    register(RandomScorer)
