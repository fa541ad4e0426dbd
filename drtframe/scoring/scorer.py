"""Importance scorers: one number per decoder block, lower means safer to remove."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import torch

from ..errors import DrtframeError
from ..models.handle import ModelHandle
from ..plugin_system.base import PluginClass
from ..plugin_system.checks import count_problem


@dataclass(frozen=True)
class ScoringContext:
    """What a scorer may look at: the model (possibly already pruned) and calibration data.

    `calibration` is a (samples, seq_len) tensor of token ids, or None for scorers that need none;
    scorers read it through `batches()`, `batch_size` samples at a time.
    """

    handle: ModelHandle
    calibration: torch.Tensor | None
    batch_size: int = 8

    def batches(self) -> Iterator[torch.Tensor]:
        """The calibration samples in batches, on the model's device."""
        if self.calibration is None:
            raise DrtframeError("this scorer needs calibration data, and none was given")
        for start in range(0, len(self.calibration), self.batch_size):
            yield self.calibration[start:start + self.batch_size].to(self.handle.device)


class Scorer(PluginClass):
    """Base class of importance scorers. Subclass, set `name`, implement `score`.

    Set `needs_calibration` when `score` reads `ctx.batches()`; commands then load calibration text,
    `calibration_size` (samples, tokens each) of it unless the user says otherwise (None: 64 x 256).
    """

    default_schedule: ClassVar[str] = "one_shot"
    needs_calibration: ClassVar[bool] = False
    calibration_size: ClassVar[tuple[int, int] | None] = None

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


T = TypeVar("T")


def rechecked(ranked: Mapping[int, float], measure: Callable[[list[int]], Mapping[int, T]],
              value: Callable[[T], float], within: float) -> dict[int, T]:
    """Exact measurements of the candidates a cheaper ranking leaves close to the best (lower is better).

    `ranked` holds each position's cheap value (a bfloat16 copy's); `measure(positions)` measures some
    exactly, `value` reads the comparable number from a measurement. Every candidate whose cheap value
    is within `within` of the best exact value so far is measured, until none is left; `within` widens
    to twice the largest cheap-vs-exact difference seen, so a ranking that errs more is trusted less.
    A candidate left unmeasured is one the ranking puts further from the best than that margin.
    """
    exact: dict[int, T] = {}
    while True:
        bar = min((value(m) for m in exact.values()), default=min(ranked.values()))
        error = max((abs(ranked[p] - value(m)) for p, m in exact.items()), default=0.0)
        margin = max(within, 2 * error)
        close = [p for p, v in ranked.items() if p not in exact and v <= bar + margin]
        if not close:
            return exact
        exact.update(measure(close))


def _scores_problem(scores: object, ctx: ScoringContext) -> str | None:
    layers = ctx.handle.num_layers
    return count_problem(scores, layers, "scores", f"a model of {layers} layers (one per layer)")


def _runs_problem(scores: object, ctx: ScoringContext, n: int) -> str | None:
    layers = ctx.handle.num_layers
    runs = max(layers - n + 1, 0)
    return count_problem(scores, runs, "run scores", f"the {runs} runs of {n} adjacent layers in a model of {layers}")


# what `checked` holds a scorer's methods to (see drtframe.plugin_system.checks)
SCORER_CHECKS = {"score": _scores_problem, "score_runs": _runs_problem}
