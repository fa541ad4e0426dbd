"""Importance scorers: one number per decoder block, lower means safer to remove."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from .models.handle import ModelHandle
from .plugin_class import PluginClass


@dataclass(frozen=True)
class ScoringContext:
    """What a scorer may look at: the model (possibly already pruned) and calibration data.

    `calibration` is a (samples, seq_len) tensor of token ids, or None for scorers that need none.
    """

    handle: ModelHandle
    calibration: torch.Tensor | None


class Scorer(PluginClass):
    """Base class of importance scorers. Subclass, set `name`, implement `score`."""

    default_schedule: ClassVar[str] = "one_shot"
    needs_calibration: ClassVar[bool] = False

    @abstractmethod
    def score(self, ctx: ScoringContext) -> list[float]:
        """One score per layer currently in `ctx.handle`, in order; lower = safer to remove."""

    def score_runs(self, ctx: ScoringContext, n: int) -> list[float]:
        """Score of removing the run of `n` adjacent layers starting at each position.

        The default sums the single-layer scores; scorers that measure runs directly (angular
        distance) override it.
        """
        single = self.score(ctx)
        return [sum(single[i:i + n]) for i in range(len(single) - n + 1)]
