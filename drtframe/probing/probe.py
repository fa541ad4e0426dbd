"""The probe base class and the context probes share, so the lens runs once for all of them."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from functools import cached_property

import torch

from ..evaluation.items import MCItem
from ..models.handle import ModelHandle
from ..plugin_system.base import PluginClass
from .lens import layer_scores
from .profile import DecisionProfile, decision_profile


class ProbeContext:
    """A model and the items to probe it on; the lens scores and profile are computed on first use."""

    def __init__(self, handle: ModelHandle, items: Sequence[MCItem], budget: int = 2048,
                 progress: Callable[[int], None] | None = None, readout: str = "logit") -> None:
        self.handle, self.items, self.budget, self.progress = handle, list(items), budget, progress
        self.readout = readout

    @cached_property
    def lens_scores(self) -> list[torch.Tensor]:
        """Per item, (choices, layers) summed continuation log-probabilities under the chosen lens."""
        return layer_scores(self.handle, self.items, self.budget, self.progress, readout=self.readout)

    @cached_property
    def profile(self) -> DecisionProfile:
        return decision_profile(self.lens_scores, [item.gold for item in self.items])


class Probe(PluginClass):
    """Base class of decision probes. Subclass, set `name`, implement `measure`."""

    @abstractmethod
    def measure(self, ctx: ProbeContext) -> dict[str, list]:
        """Per-layer measurements: metric name -> one value per layer of `ctx.handle`."""
