"""Pruning schedules: how a scorer's numbers turn into a set of layers to remove."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .plugin_class import PluginClass
from .scoring import Scorer, ScoringContext


@dataclass(frozen=True)
class PrunePlan:
    """Which original layers to remove, in the order the schedule chose them, and why.

    `scores` are the first round's scores in original numbering (None for removed layers).
    """

    method: str
    removed: tuple[int, ...]
    order: tuple[int, ...]
    scores: tuple[float | None, ...]


Progress = Callable[[int], None]


class Schedule(PluginClass):
    """Base class of schedules. Subclass, set `name`, implement `plan`.

    Set `prefix_consistent` when the first k removals of a plan for K > k are the plan for k (one-shot
    ranking, greedy iterative removal): `drtframe compare` then plans once, for the largest budget.
    """

    prefix_consistent: ClassVar[bool] = False

    @abstractmethod
    def plan(self, scorer: Scorer, ctx: ScoringContext, k: int, progress: Progress | None = None) -> PrunePlan:
        """Choose `k` original layers of `ctx.handle` to remove. `progress(1)` after each removal."""

    def default_count(self, scorer: Scorer, num_layers: int) -> int:
        """How many removals `drtframe score` orders when not told: by default all layers but one."""
        return num_layers - 1


def scores_in_original_numbering(ctx: ScoringContext, scores: list[float]) -> tuple[float | None, ...]:
    """Spread scores of the current layers over the original layer indices."""
    by_original = dict(zip(ctx.handle.kept, scores))
    return tuple(by_original.get(i) for i in range(ctx.handle.original_num_layers))
