"""The healer plugin kind: given the dense model, the blocks about to go and calibration text, change
kept weights in place so that the model without those blocks computes more nearly what it did."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..models.handle import ModelHandle
from ..plugin_system.base import PluginClass


@dataclass(frozen=True)
class HealingContext:
    """What a healer may look at.

    `handle` is the dense model, the blocks in `removed` (original indices) still present, so a
    healer can read what they did; `calibration` is (samples, seq_len) token ids and `attention_mask`
    (same shape, 0 at padding; None: no padding) says which tokens count.
    """

    handle: ModelHandle
    removed: tuple[int, ...]
    calibration: torch.Tensor
    attention_mask: torch.Tensor | None = None
    batch_size: int = 8

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(ids, attention_mask) batches on the model's device."""
        mask = self.attention_mask if self.attention_mask is not None else torch.ones_like(self.calibration)
        for start in range(0, len(self.calibration), self.batch_size):
            stop = start + self.batch_size
            yield self.calibration[start:stop].to(self.handle.device), mask[start:stop].to(self.handle.device)

    def runs(self) -> list[tuple[int, int]]:
        """The removed blocks as maximal runs [start, end) of adjacent original indices."""
        runs: list[list[int]] = []
        for layer in sorted(self.removed):
            if runs and runs[-1][1] == layer:
                runs[-1][1] = layer + 1
            else:
                runs.append([layer, layer + 1])
        return [tuple(run) for run in runs]


class Healer(PluginClass):
    """Base class of healers. Subclass, set `name`, implement `heal`.

    A healer must leave a standard architecture (weights changed, no module or hook added) so that
    the healed model saves and reloads in plain transformers; one that cannot sets
    `standard_architecture = False`, and drtframe then evaluates it but refuses to save it.
    """

    standard_architecture: ClassVar[bool] = True

    @abstractmethod
    def heal(self, ctx: HealingContext) -> dict:
        """Change `ctx.handle`'s kept weights in place; return a JSON-ready record of what was done."""
