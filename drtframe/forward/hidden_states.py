"""The residual stream between decoder blocks: watch it, resume from it, count block forwards.

Scorers need the hidden state entering and leaving each block. Forward hooks on the decoder layers
see both during an ordinary forward pass of any architecture, so a scorer can reduce them on the fly
(memory per layer, never per token pair) instead of keeping every hidden state. Resuming runs only
the blocks after a given one, from a hidden state cached earlier, which is what makes re-scoring
with one block skipped cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar

import torch

from ..models.handle import ModelHandle

BlockWatcher = Callable[[int, torch.Tensor, torch.Tensor], None]
T = TypeVar("T")


def hidden_in(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _hidden_out(output) -> torch.Tensor:
    """A block's output hidden state (decoder layers return a tensor or a tuple, by version)."""
    return output if isinstance(output, torch.Tensor) else output[0]


def with_hidden_out(output, hidden: torch.Tensor):
    return hidden if isinstance(output, torch.Tensor) else (hidden, *output[1:])


@contextmanager
def hooked(modules, register: Callable) -> Iterator[None]:
    handles = [register(position, module) for position, module in enumerate(modules)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def watch_blocks(handle: ModelHandle, watcher: BlockWatcher) -> Iterator[None]:
    """Inside, every forward of the model calls `watcher(position, block_input, block_output)`.

    `position` counts the blocks currently in the model; the tensors are (batch, tokens, hidden).
    """
    def register(position, layer):
        def hook(module, args, kwargs, output):
            watcher(position, hidden_in(args, kwargs), _hidden_out(output))
        return layer.register_forward_hook(hook, with_kwargs=True)

    with hooked(handle.layers, register):
        yield


def run_blocks(handle: ModelHandle, ids: torch.Tensor) -> None:
    """One forward through the embeddings and every block (no LM head, no KV cache)."""
    handle.model.base_model(input_ids=ids, use_cache=False)


def block_inputs(handle: ModelHandle, ids: torch.Tensor, last: int | None = None,
                 seed: tuple[int, torch.Tensor] | None = None) -> list[torch.Tensor | None]:
    """The hidden state entering each block of the current model, for the batch `ids`; with `last`,
    of blocks 0..`last` only (the blocks after it do not run); with `seed` = (position, the input of
    the block there), of the blocks from that position on only (the earlier entries are None)."""
    if last is not None and last < handle.num_layers - 1:
        with handle.temporarily_without(handle.kept[last + 1:]) as front:
            return block_inputs(front, ids, seed=seed)
    if seed is not None and seed[0] > 0:
        start, hidden = seed
        with resumed_after(handle, start - 1, hidden):  # the model now holds the blocks from `start` on
            return [None] * start + block_inputs(handle, ids)
    inputs: list[torch.Tensor | None] = [None] * handle.num_layers

    def keep(position, block_input, block_output):
        inputs[position] = block_input

    with watch_blocks(handle, keep):
        run_blocks(handle, ids)
    return inputs


@contextmanager
def resumed_after(handle: ModelHandle, position: int, hidden: torch.Tensor | Iterator[torch.Tensor]) -> Iterator[None]:
    """Inside, a forward of the model skips blocks 0..`position` and feeds `hidden` to the rest.

    With `hidden` the cached input of block `position`, the logits are those of the model without
    that block, while only the blocks after it run. An iterator of tensors feeds the next one to
    each forward, to replay a recorded sequence of forwards. A model keeps at least one block, so
    when `position` is the last one it stays and its output is overwritten (one block forward wasted).
    """
    last = position == handle.num_layers - 1
    replay = not isinstance(hidden, torch.Tensor)

    def feed() -> torch.Tensor:
        if not replay:
            return hidden
        state = next(hidden, None)
        if state is None:
            raise RuntimeError("resumed_after: more forwards than recorded block inputs to replay")
        return state

    def replace_input(module, args, kwargs):
        if args:
            return (feed(), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": feed()}

    def replace_output(module, args, kwargs, output):
        return with_hidden_out(output, feed())

    with handle.temporarily_without(handle.kept[:position + (0 if last else 1)]) as rest:
        first = rest.layers[0]
        if last:
            hook = first.register_forward_hook(replace_output, with_kwargs=True)
        else:
            hook = first.register_forward_pre_hook(replace_input, with_kwargs=True)
        try:
            yield
        finally:
            hook.remove()
        if replay and next(hidden, None) is not None:
            raise RuntimeError("resumed_after: fewer forwards than recorded block inputs to replay")


@contextmanager
def recording_inputs(handle: ModelHandle, positions) -> Iterator[dict[int, list[torch.Tensor]]]:
    """Inside, every forward appends the input of each block at `positions` to the yielded lists.

    A recorded sequence of forwards can then be replayed without some blocks (`replaying_without`).
    """
    recorded: dict[int, list[torch.Tensor]] = {p: [] for p in positions}

    def record(position, block_input, block_output):
        if position in recorded:
            recorded[position].append(block_input)

    with watch_blocks(handle, record):
        yield recorded


@contextmanager
def replaying_without(handle: ModelHandle, positions: tuple[int, ...],
                      recorded: dict[int, list[torch.Tensor]]) -> Iterator[ModelHandle]:
    """Inside, the model without the blocks at `positions`, replaying the forwards `recorded` on the full model.

    Blocks before the first removed one, p, see the same inputs with or without the removed blocks,
    so they do not run: each forward starts at the block after p, fed block p's recorded input
    (`resumed_after`). The forwards must repeat the recorded ones (same batches, same order).
    """
    first, *rest = sorted(positions)
    with handle.temporarily_without(tuple(handle.kept[p] for p in rest)) as pruned:
        with resumed_after(pruned, first, iter(recorded[first])):
            yield pruned


class BlockCounter:
    """How many times a decoder block ran (one batch through one block counts one)."""

    def __init__(self) -> None:
        self.count = 0


@contextmanager
def count_block_forwards(handle: ModelHandle) -> Iterator[BlockCounter]:
    """Count block forwards of every block now in the model, while inside."""
    counter = BlockCounter()

    def register(position, layer):
        def hook(module, args):
            counter.count += 1
        return layer.register_forward_pre_hook(hook)

    with hooked(handle.layers, register):
        yield counter


def removed_block(kept_before: Sequence[int], kept_now: Sequence[int]) -> int | None:
    """The block (original index) the model with blocks `kept_now` lacks, when it is the model with
    blocks `kept_before` less exactly one; None otherwise (what a round may carry over needs this)."""
    if len(kept_now) != len(kept_before) - 1 or not set(kept_now) < set(kept_before):
        return None
    return (set(kept_before) - set(kept_now)).pop()


def carried_inputs(kept_before: Sequence[int], inputs: Mapping[int, T], kept_now: Sequence[int]) -> dict[int, T]:
    """The block inputs recorded on the model with blocks `kept_before` (original index -> input) that
    hold for the model with blocks `kept_now`, which lacks one block b of it: those of the blocks
    before b, and b's input, which now enters the block after b. Nothing for any other model."""
    removed = removed_block(kept_before, kept_now)
    if removed is None:
        return {}
    held = {k: x for k, x in inputs.items() if k < removed}
    after = [k for k in kept_now if k > removed]
    if removed in inputs and after:
        held[after[0]] = inputs[removed]
    return held


def completed_inputs(handle: ModelHandle, ids: torch.Tensor, known: Mapping[int, torch.Tensor],
                     last: int) -> list[torch.Tensor]:
    """The inputs of blocks 0..`last` of the current model for the batch `ids`: those `known` holds
    (original index -> input) up to the first one it lacks, the rest recorded on from there."""
    prefix = []
    for k in handle.kept[:last + 1]:
        if k not in known:
            break
        prefix.append(known[k])
    if len(prefix) > last:
        return prefix
    if not prefix:
        return block_inputs(handle, ids, last)
    start = len(prefix) - 1
    return prefix[:start] + block_inputs(handle, ids, last, (start, prefix[start]))[start:]


def resumable(states: Sequence[Mapping[tuple[int, int], T]], kept_before: Sequence[int],
              kept_now: Sequence[int]) -> tuple[int, dict[int, list[T]]] | None:
    """Where a ranking of the model with blocks `kept_now` may resume the previous ranking's replays.

    The previous model (`kept_before`) had one block b more, and its replay of candidate j saved, per
    batch of `states`, its input to block k under (j, k) (original indices). Blocks before b are the
    same in both models, so candidate j < b may start after b from its saved input to b. Returns the
    position (in `kept_now`) of the first block after b, and per candidate j < b saved in every batch
    its inputs per batch; None unless `kept_now` is `kept_before` less one block.
    """
    removed = removed_block(kept_before, kept_now)
    if removed is None:
        return None
    inputs = {j: [batch[j, removed] for batch in states] for j in kept_now
              if j < removed and states and all((j, removed) in batch for batch in states)}
    return sum(k < removed for k in kept_now), inputs
