"""Where an architecture keeps its decoder blocks, and how to delete some of them safely.

Deleting blocks is more than slicing a ModuleList: the kept attention
modules must be renumbered (the KV cache indexes by `layer_idx`), the config's layer count and
per-layer lists must follow, and lists of layer indices must be remapped. Everything here works
on any architecture described by an `Architecture`, which plugins register.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch.nn as nn

from ..errors import DrtframeError

if TYPE_CHECKING:
    from ..plugin_system.manager import Registry


@dataclass(frozen=True)
class Architecture:
    """How drtframe finds and removes decoder blocks of one family of transformers models."""

    name: str
    description: str
    model_types: tuple[str, ...]
    layers_path: str
    final_norm_path: str | None
    # Config lists with one entry per layer (sliced to the kept layers), e.g. `layer_types`.
    per_layer_lists: tuple[str, ...] = ("layer_types",)
    # Config lists holding layer indices (remapped to new indices), e.g. `mlp_only_layers`.
    index_lists: tuple[str, ...] = ()
    # Returns a reason when a given model cannot be pruned faithfully, else None.
    unsupported: Callable[[object], str | None] = field(default=lambda config: None)
    # The Linear (or GPT-2 Conv1D) inside a block whose output the block adds to the residual stream
    # as its MLP's contribution, with nothing but dropout in between; linear healing folds its patch
    # there. None when there is no such layer (a norm after the MLP, a mixture of experts).
    mlp_out_path: str | None = None


def get_path(obj: object, path: str) -> object:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set_path(obj: object, path: str, value: object) -> None:
    head, _, last = path.rpartition(".")
    setattr(get_path(obj, head) if head else obj, last, value)


def decoder_layers(model: nn.Module, arch: Architecture) -> nn.ModuleList:
    """The model's decoder blocks, in order."""
    return get_path(model, arch.layers_path)


def validate_removal(removed: Iterable[int], num_layers: int) -> tuple[int, ...]:
    """Sorted indices, or a clear error for repeats, out-of-range values or removing everything."""
    removed = list(removed)
    seen: set[int] = set()
    for index in removed:
        if not 0 <= index < num_layers:
            raise DrtframeError(f"layer {index} is out of range: the model has layers 0..{num_layers - 1}")
        if index in seen:
            raise DrtframeError(f"layer {index} is listed more than once")
        seen.add(index)
    if len(seen) >= num_layers:
        raise DrtframeError(f"cannot remove all {num_layers} layers; keep at least one")
    return tuple(sorted(seen))


def remove_layers(model: nn.Module, arch: Architecture, removed: Iterable[int]) -> Callable[[], None]:
    """Delete the blocks at `removed` (current 0-based positions) in place; return an undo function.

    Kept blocks are not copied, so removal is cheap and the undo restores the very same modules.
    """
    config = model.config
    reason = arch.unsupported(config)
    if reason:
        raise DrtframeError(f"cannot prune this {arch.name} model: {reason}")
    layers = decoder_layers(model, arch)
    old_count = len(layers)
    removed = validate_removal(removed, old_count)
    kept_idx = [i for i in range(old_count) if i not in set(removed)]
    new_position = {old: new for new, old in enumerate(kept_idx)}

    saved_idx = [(m, m.layer_idx) for layer in layers for m in layer.modules()
                 if isinstance(getattr(m, "layer_idx", None), int)]
    saved_config = {"num_hidden_layers": config.num_hidden_layers}
    for key in arch.per_layer_lists + arch.index_lists:
        if getattr(config, key, None) is not None:
            saved_config[key] = getattr(config, key)

    kept = nn.ModuleList([layers[i] for i in kept_idx])
    _set_path(model, arch.layers_path, kept)
    for new, layer in enumerate(kept):
        for module in layer.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new
    config.num_hidden_layers = len(kept_idx)
    for key in arch.per_layer_lists:
        values = saved_config.get(key)
        if values is not None:
            if len(values) != old_count:
                raise DrtframeError(f"config.{key} has {len(values)} entries for {old_count} layers")
            setattr(config, key, [values[i] for i in kept_idx])
    for key in arch.index_lists:
        values = saved_config.get(key)
        if values is not None:
            setattr(config, key, [new_position[i] for i in values if i in new_position])

    def undo() -> None:
        _set_path(model, arch.layers_path, layers)
        for module, index in saved_idx:
            module.layer_idx = index
        for key, value in saved_config.items():
            setattr(config, key, value)

    return undo


@contextmanager
def layers_removed(model: nn.Module, arch: Architecture, removed: Iterable[int]) -> Iterator[None]:
    """Run a block with some layers removed, restoring the full model afterwards."""
    undo = remove_layers(model, arch, removed)
    try:
        yield
    finally:
        undo()


def find_architecture(registry: Registry, model_type: str) -> Architecture:
    """The registered Architecture that handles `config.model_type`, or a clear error (naming failed plugins)."""
    supported = []
    for arch in (e.obj for e in registry.entries("architecture")):
        if model_type in arch.model_types:
            return arch
        supported.extend(arch.model_types)
    raise DrtframeError(
        f"drtframe does not know where the decoder blocks of model type {model_type!r} live; "
        f"supported: {', '.join(sorted(supported))} (a plugin can add more)"
        + "".join(f"; {note}" for note in registry.failure_notes()))
