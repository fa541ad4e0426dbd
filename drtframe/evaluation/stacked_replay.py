"""Choice scores of the model without each of many blocks, the candidates stacked along the batch.

`choice_scores_without` replays one candidate per forward: on CPU its forwards are small (a few
contexts, a few dozen continuation tokens) and pay Python and GEMM overhead per block. Here a run of
g adjacent candidates a..a+g-1 shares each forward: the batch is repeated g times (candidate-major)
and starts at block a. Copy c lacks block a+c, so at block a+i copies 0..i-1 (past the block they
lack) compute, copy i passes its input through, and copies after i, still on the dense path, take
the recorded input of block a+i+1 instead of computing it. Only a prefix of the rows runs each
block of the run (one copy at block a, whose output is then discarded), so the run does the work of
its candidates plus one block, on matrices g times taller after it. Each batch of rows is one
forward, laid out the same for the recording and every replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from ..forward.hidden_states import hidden_in, hooked, with_hidden_out, recording_inputs, resumed_after
from ..models.handle import ModelHandle
from .items import MCItem
from .loglikelihood import (Readout, Unit, collected, final_layer, forward_batches, pad_token, read_nothing,
                            score_batch, tiled)


def _rows(value, total: int, keep: int):
    """`value` with its first `keep` rows where it is batch-shaped (a tensor of `total` rows and at least
    two dimensions, or a tuple of them, such as rotary position embeddings); anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value[:keep] if value.dim() >= 2 and value.shape[0] == total else value
    if isinstance(value, tuple):
        return tuple(_rows(v, total, keep) for v in value)
    return value


@contextmanager
def _diagonal(handle: ModelHandle, copies: int, dense: dict[int, Iterator[torch.Tensor]]) -> Iterator[None]:
    """Inside, block i < `copies` of the current model runs copies 0..i-1 of a `copies`-times stacked
    batch (at least one copy), passes copy i through, and gives later copies the next tensor of
    `dense[i + 1]`: the recorded input of block i + 1 for this forward."""
    entering: dict[int, torch.Tensor] = {}  # block i's whole stacked input, while it runs

    def slicing(i, layer):
        def hook(module, args, kwargs):
            hidden = entering[i] = hidden_in(args, kwargs)
            total, keep = hidden.shape[0], max(i, 1) * (hidden.shape[0] // copies)
            return tuple(_rows(a, total, keep) for a in args), {k: _rows(v, total, keep) for k, v in kwargs.items()}
        return layer.register_forward_pre_hook(hook, with_kwargs=True)

    def filling(i, layer):
        def hook(module, args, kwargs, output):
            hidden = entering.pop(i)
            rows = hidden.shape[0] // copies
            out = output if isinstance(output, torch.Tensor) else output[0]
            parts = [out[:i * rows], hidden[i * rows:(i + 1) * rows].to(out.device)]  # a device map moves
            if i + 1 < copies:  # inputs inside forward: the block's input may sit on the previous block's device
                later = next(dense[i + 1], None)
                if later is None:
                    raise RuntimeError("stacked replay: more forwards than recorded block inputs")
                parts.append(tiled(later.to(out.device), copies - i - 1))
            return with_hidden_out(output, torch.cat(parts))
        return layer.register_forward_hook(hook, with_kwargs=True)

    with hooked(handle.layers[:copies], slicing), hooked(handle.layers[:copies], filling):
        yield


@dataclass
class Recording:
    """The inputs of some blocks at every forward of a model's pass over MC items, batch by batch: what
    replays of that model without one of those blocks start from (in this model or a copy of it in
    another dtype)."""

    items: Sequence[MCItem]
    pad_id: int
    batches: list[tuple[list[Unit], dict[int, list[torch.Tensor]]]]


def record(handle: ModelHandle, items: Sequence[MCItem], positions: Sequence[int], budget: int = 2048) -> Recording:
    """Run the model over `items` (batches cut by `budget` padded tokens), keeping the input of every
    block at `positions` (memory: tokens x hidden size per position, in the model's dtype)."""
    pad_id = pad_token(handle.tokenizer)
    recorded = []
    for batch in forward_batches(handle, items, budget):
        with recording_inputs(handle, positions) as inputs:
            score_batch(handle, batch, pad_id, read_nothing, False)
        recorded.append((batch, inputs))
    return Recording(items, pad_id, recorded)


def read_recorded(handle: ModelHandle, recording: Recording, readout: Readout) -> list[torch.Tensor]:
    """Per item, the (choices, columns) tensor a per-layer `readout` (one handed every block's output, as
    `choice_scores(..., hidden=True)` does) reads from the forwards `recording` holds of `handle`, the
    input of every block recorded. Block l's output is block l+1's recorded input, so only the last
    block runs again: the numbers of `choice_scores` over the recorded items without its forward."""
    last = handle.num_layers - 1
    if any(sorted(inputs) != list(range(last + 1)) for _, inputs in recording.batches):
        raise ValueError("read_recorded needs a recording of every block's input of the model it reads")
    recorded = iter(recording.batches)

    def scored(batch, pad_id):
        _, inputs = next(recorded)
        earlier = zip(*(inputs[p] for p in range(1, last + 1)))  # per forward: blocks 0..last-1's outputs

        def read(out, blocks, reads):  # a one-block model has no earlier outputs: ()
            return readout(out, [*next(earlier, ()), *blocks], reads)

        with resumed_after(handle, last - 1, iter(inputs[last])):
            return {None: score_batch(handle, batch, pad_id, read, True)}

    return collected(recording.items, [batch for batch, _ in recording.batches], recording.pad_id, None, scored)[None]


def recorded_without(handle: ModelHandle, previous: Recording, position: int) -> Recording:
    """The recording of every block's input of `handle`: the model `previous` recorded (every block)
    less its block at `position`. Inputs before `position` are unchanged, the block now at `position`
    takes the removed block's input, and only the blocks after it run again, from there."""
    later_blocks = range(1, handle.num_layers - position)  # counted from the block now at `position`
    recorded = []
    for batch, inputs in previous.batches:
        kept = {p: inputs[p] for p in range(min(position + 1, handle.num_layers))}
        if later_blocks:
            with resumed_after(handle, position - 1, iter(inputs[position])), \
                    recording_inputs(handle, later_blocks) as later:
                score_batch(handle, batch, previous.pad_id, read_nothing, False)
            kept.update((position + q, states) for q, states in later.items())
        recorded.append((batch, kept))
    return Recording(previous.items, previous.pad_id, recorded)


# Per batch of a recording: (original index of the block a candidate lacks, original index of a later
# block) -> that block's input in the model without the candidate, one tensor per forward.
ReplayStates = list[dict[tuple[int, int], list[torch.Tensor]]]


@dataclass
class Resume:
    """Candidates that restart at block `position`, each from its own input there: the states a previous
    round's replays left at the block since removed (the blocks in between see the same inputs)."""

    position: int
    inputs: dict[int, list[list[torch.Tensor]]]  # candidate position -> per batch -> per forward


@contextmanager
def _capturing(handle: ModelHandle, captured: dict[int, list[torch.Tensor]]) -> Iterator[None]:
    """Inside, every forward appends the whole input (all stacked copies) of each block at a position
    `captured` holds to its list there."""
    def register(_, position):
        def hook(module, args, kwargs):
            captured[position].append(hidden_in(args, kwargs))
        return handle.layers[position].register_forward_pre_hook(hook, with_kwargs=True)

    with hooked(list(captured), register):
        yield


def _jobs(runs, resumed, group, resume):
    """The stacked replays, last run first (so that a run's later blocks are scored before it runs,
    for `replay`'s `keep`), then the resumed candidates: (candidates, the position they start at,
    whether they run diagonally from the recording)."""
    for run in reversed(runs):
        yield run, run[0], True
    for first in range(0, len(resumed), group):
        yield resumed[first:first + group], resume.position, False


def _feeds(candidates, start, diagonal, resume, index, inputs, dtype):
    """One batch's feeds of a stacked replay, made when it runs (feeds are big): the inputs fed at its
    first block per forward and, for a diagonal run, the recorded dense inputs."""
    if diagonal:
        return ((tiled(state.to(dtype), len(candidates)) for state in inputs[start]),
                {i: (state.to(dtype) for state in inputs[p]) for i, p in enumerate(candidates)})
    per_forward = zip(*(resume.inputs[p][index] for p in candidates))
    return (torch.cat(states).to(dtype) for states in per_forward), None


def replay(handle: ModelHandle, recording: Recording, positions: Sequence[int], group: int = 10,
           progress: Callable[[int], None] | None = None, resume: Resume | None = None,
           states: ReplayStates | None = None,
           keep: Callable[[dict[int, list[torch.Tensor]]], set[int]] | None = None) -> dict[int, list[torch.Tensor]]:
    """Per block position p (recorded): per item, the (choices,) continuation log-likelihoods of the model
    without p, runs of at most `group` adjacent candidates stacked into one replay. `handle` is the
    recorded model or a copy of it in another dtype (the recorded inputs are cast to it). Candidates in
    `resume` start from their own states instead, stacked `group` at a time.

    `states`, if given, is filled with the block inputs each candidate's replay saw at the blocks of
    `positions` after it: about L^2/2 of them. With `keep`, which names the positions whose states are
    wanted given the scores of the candidates replayed so far, a replay records only at positions
    `keep` named or not yet replayed, and after each replay the others are let go: the last run goes
    first, so every block after a run is scored before it runs (SmolLM2, 30 blocks, the best 6 kept:
    about 6L states at a time instead of L^2/2). Kept states are copied out of the stacked tensors.
    """
    resumed = sorted(resume.inputs) if resume else []
    runs: list[list[int]] = []
    for p in sorted(set(positions) - set(resumed)):
        if runs and p - runs[-1][0] < group and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    dtype = next(handle.model.parameters()).dtype
    items = recording.items
    scores = {p: [[None] * item.num_choices for item in items] for p in positions}
    if states is not None:
        states[:] = [{} for _ in recording.batches]
    wanted, done = set(positions), set()
    jobs = list(_jobs(runs, resumed, group, resume))
    for number, (candidates, start, diagonal) in enumerate(jobs):
        at = [k for k in range(start, handle.num_layers) if k in wanted] if states is not None else []
        for index, (batch, inputs) in enumerate(recording.batches):
            order = [(pos, choice) for unit in batch for pos, choice, _ in unit.choices]
            feed, dense = _feeds(candidates, start, diagonal, resume, index, inputs, dtype)
            captured = {k - start: [] for k in at}  # positions in the model `resumed_after` leaves
            # capture before _diagonal's hooks slice the rows: a state is the whole input
            with (resumed_after(handle, start - 1, feed), _capturing(handle, captured) if at else nullcontext(),
                  _diagonal(handle, len(candidates), dense) if dense else nullcontext()):
                stacked = score_batch(handle, batch, recording.pad_id, final_layer, False, len(candidates))
            stacked = stacked[:, 0].view(len(candidates), -1).cpu()
            for copy, p in enumerate(candidates):
                for (pos, choice), score in zip(order, stacked[copy]):
                    scores[p][pos][choice] = score
                for offset, tensors in captured.items():
                    if start + offset > p:
                        states[index][handle.kept[p], handle.kept[start + offset]] = [
                            t.view(len(candidates), -1, *t.shape[1:])[copy] for t in tensors]
            if progress and number == len(jobs) - 1:
                progress(len({pos for pos, _ in order}))
        done.update(candidates)
        if keep is not None and states is not None:
            wanted = (set(positions) - done) | keep({p: [torch.stack(c) for c in scores[p]] for p in done})
            blocks, fresh = {handle.kept[k] for k in wanted}, {handle.kept[p] for p in candidates}
            states[:] = [{key: [t.clone() for t in value] if key[0] in fresh else value
                          for key, value in batch.items() if key[1] in blocks} for batch in states]
    return {p: [torch.stack(per_choice) for per_choice in per_item] for p, per_item in scores.items()}


def stacked_choice_scores_without(handle: ModelHandle, items: Sequence[MCItem], positions: Sequence[int],
                                  group: int = 10, budget: int = 2048,
                                  progress: Callable[[int], None] | None = None) -> dict[int, list[torch.Tensor]]:
    """Per block position p: per item, the (choices,) continuation log-likelihoods of the model without p.

    The same numbers as `choice_scores_without` (up to the rounding of taller matrices), with runs of
    at most `group` adjacent candidates stacked into one replay: the one-call form of `record` and
    `replay` (the decision scorer calls those itself, to share a recording).
    """
    return replay(handle, record(handle, items, positions, budget), positions, group, progress)
