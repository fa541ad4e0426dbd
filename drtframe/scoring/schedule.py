"""Pruning schedules: how a scorer's numbers turn into a set of layers to remove."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from ..plugin_system.base import PluginClass
from .scorer import Scorer, ScoringContext


@dataclass(frozen=True)
class PrunePlan:
    """Which original layers to remove, in the order the schedule chose them, and why.

    `scores` are the first round's scores in original numbering (None for removed layers). `record`
    is what the schedule checked on the way, JSON-ready (the guarded schedule's probes), recorded by
    `prune`, `score` and `compare`; None for schedules that check nothing.
    """

    method: str
    removed: tuple[int, ...]
    order: tuple[int, ...]
    scores: tuple[float | None, ...]
    record: dict | None = field(default=None, hash=False)


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


def _plan_problem(plan: object, scorer: Scorer, ctx: ScoringContext, k: int, progress: Progress | None = None
                  ) -> str | None:
    if not isinstance(plan, PrunePlan):
        return f"returned {type(plan).__name__}, not a PrunePlan"
    removed = set(plan.removed)
    if len(plan.removed) != k or len(removed) != k or not removed <= set(ctx.handle.kept):
        return (f"returned a plan removing layers {list(plan.removed)}; it must remove {k} different layers "
                f"of ctx.handle.kept (original numbering)")
    return None


# what `checked` holds a schedule's methods to (see drtframe.plugin_system.checks)
SCHEDULE_CHECKS = {"plan": _plan_problem}
