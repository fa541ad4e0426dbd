"""Which weights a model has now, cheaply enough to ask every scoring round.

Scorers keep forward results between rounds (the block inputs SLEB's and decision's candidates
resume from); those describe the model only while its weights stay. `fingerprint` hashes every byte,
for results kept on disk; this notes each tensor's identity, storage and in-place version (about a
millisecond for SmolLM2's 272 tensors).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import torch

Weights = dict[int, tuple[weakref.ref, int, int]]  # id -> (the tensor, its storage, its in-place version)


def _tensors(model: torch.nn.Module) -> Iterator[torch.Tensor]:
    """The parameters and persistent buffers (what `state_dict` holds: not the rotary frequencies that
    some rope types rewrite on every forward), less the meta placeholders of weights a device map keeps
    off-device (accelerate swaps them on every forward; healers refuse such weights) and inference
    tensors (they keep no version)."""
    for tensor in model.state_dict(keep_vars=True).values():
        if tensor.device.type != "meta" and not tensor.is_inference():
            yield tensor


def weights_of(model: torch.nn.Module) -> Weights:
    """What `same_weights` later compares `model` against."""
    return {id(t): (weakref.ref(t), t.data_ptr(), t._version) for t in _tensors(model)}


def same_weights(model: torch.nn.Module, before: Weights) -> bool:
    """Whether every weight `model` has now was in `before` and has been neither replaced nor changed in
    place since: a healer, an optimiser step or `load_state_dict` in between make kept forward results
    stale. Removed blocks are fine (their tensors are simply gone). Not seen: writes that bypass the
    version counter (through `.data`, a numpy view or the untyped storage) and changes with no tensor
    behind them (a hook added); code that makes those scores with a new scorer, or `resume=false`."""
    for tensor in _tensors(model):
        seen = before.get(id(tensor))
        if seen is None or seen[0]() is not tensor or seen[1:] != (tensor.data_ptr(), tensor._version):
            return False
    return True
