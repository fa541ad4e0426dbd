"""The frozen handle that carries a loaded model through drtframe's stages."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import DrtframeError
from .architecture import Architecture, decoder_layers, get_path, layers_removed, remove_layers, validate_removal
from .placement import execution_device, fast_bfloat16, offloaded_parameters


@dataclass(frozen=True)
class ModelHandle:
    """A loaded causal LM, its tokenizer, where it came from and which original layers are gone.

    `removed` holds original 0-based indices; `original_num_layers` the count before any removal,
    so results can always be reported in the numbering of the model the user passed.
    """

    model: Any
    tokenizer: Any
    source: str
    architecture: Architecture
    original_num_layers: int
    removed: tuple[int, ...] = ()

    @property
    def num_layers(self) -> int:
        return len(decoder_layers(self.model, self.architecture))

    @property
    def kept(self) -> tuple[int, ...]:
        """Original indices of the layers still present, in order."""
        return tuple(i for i in range(self.original_num_layers) if i not in set(self.removed))

    @property
    def device(self) -> torch.device:
        """Where inputs go: where the model runs (a model spread by a device map may keep its first
        weights on disk, so not necessarily where they are)."""
        return execution_device(self.model)

    @property
    def layers(self) -> torch.nn.ModuleList:
        return decoder_layers(self.model, self.architecture)

    @property
    def final_norm(self) -> torch.nn.Module | None:
        path = self.architecture.final_norm_path
        return get_path(self.model, path) if path else None

    def to_current(self, original: tuple[int, ...]) -> tuple[int, ...]:
        """Map original indices to positions in the current (possibly pruned) model."""
        validate_removal(original, self.original_num_layers)
        position = {o: c for c, o in enumerate(self.kept)}
        gone = [i for i in original if i not in position]
        if gone:
            raise DrtframeError(f"layer {gone[0]} was already removed")
        return tuple(position[i] for i in original)

    def without(self, original: tuple[int, ...]) -> ModelHandle:
        """Delete more original layers in place and return the handle describing the result."""
        remove_layers(self.model, self.architecture, self.to_current(original))
        return replace(self, removed=tuple(sorted(self.removed + tuple(original))))

    @contextmanager
    def temporarily_without(self, original: tuple[int, ...]) -> Iterator[ModelHandle]:
        """Yield a handle of the model with more layers removed; restore them on exit."""
        with layers_removed(self.model, self.architecture, self.to_current(original)):
            yield replace(self, removed=tuple(sorted(self.removed + tuple(original))))

    @property
    def offloaded(self) -> tuple[str, ...]:
        """Parameters a device map keeps off the devices that run them (on disk, or in CPU memory for a
        GPU run): meta tensors that accelerate fills only for the duration of a forward."""
        return tuple(offloaded_parameters(self.model))

    def parameter_count(self) -> int:
        """Unique parameters (tied embeddings counted once)."""
        return sum(p.numel() for p in self.model.parameters())

    def bfloat16_copy(self) -> ModelHandle | None:
        """A bfloat16 copy of a float32 model in memory, for scorers that rank candidates at about twice
        the speed and re-check the leaders in float32 (`drtframe.scoring.scorer.rechecked`); None for any other
        model (already reduced, or with weights a device map keeps off-device), and where the device has no
        native bfloat16 arithmetic (`fast_bfloat16`), which would make the copy the slower of the two."""
        if (self.offloaded or next(self.model.parameters()).dtype != torch.float32
                or not fast_bfloat16(self.device)):
            return None
        return replace(self, model=copy.deepcopy(self.model).to(torch.bfloat16))
