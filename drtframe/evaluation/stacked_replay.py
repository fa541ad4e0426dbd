"""Choice scores of the model without each of many blocks, the candidates stacked along the batch.

`choice_scores_without` replays one candidate per forward: on CPU its forwards are small (a few
contexts, a few dozen continuation tokens) and pay Python and GEMM overhead per block. Here a run of
g adjacent candidates a..a+g-1 shares each forward: the batch is repeated g times (candidate-major),
blocks before a do not run (all g copies start from block a's recorded input), and at block a+c
copy c passes its input straight through (block a+c is the one it lacks). Copy c thus runs blocks
a..a+c it would not need (c + 1 wasted block passes), which small g keeps cheap; in exchange the
matrices are g times taller. The forwards (a context pass, then continuation passes against its
KV cache) are laid out once per batch of units, the same for the recording and every replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch

from ..hidden_states import _hidden_in, _hooked, _with_hidden_out, recording_inputs, resumed_after
from ..models.handle import ModelHandle
from .items import MCItem
from .loglikelihood import (_batches, _branch, _length_groups, _Unit, build_units, final_layer, model_max_length)


def _tiled(x: torch.Tensor, copies: int) -> torch.Tensor:
    return x.repeat(copies, *([1] * (x.dim() - 1)))


@torch.inference_mode()
def _run_batch(handle: ModelHandle, batch: list[_Unit], pad_id: int, copies: int) -> torch.Tensor:
    """Final-layer scores of every choice in `batch` for each of `copies` stacked copies: (copies, choices).

    The forwards are those of the evaluator (`_score_batch`): the contexts, left-padded, then groups
    of continuations of similar length against a branch of the contexts' KV cache.
    """
    device = handle.device
    width = max(len(u.context) for u in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, unit in enumerate(batch):
        ids[row, width - len(unit.context):] = torch.tensor(unit.context)
        mask[row, width - len(unit.context):] = 1
    ids, mask = _tiled(ids, copies).to(device), _tiled(mask, copies).to(device)
    out = handle.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                       use_cache=True, logits_to_keep=1)

    choices = [(row, cont) for row, unit in enumerate(batch) for _, _, cont in unit.choices]
    offsets = torch.arange(copies, device=device).repeat_interleave(len(choices)) * len(batch)
    rows = _tiled(torch.tensor([row for row, _ in choices], device=device), copies) + offsets
    first = torch.tensor([[cont[0]] for _, cont in choices], device=device).repeat(copies, 1)
    totals = final_layer(out, None, rows, torch.full_like(first, -1), first, torch.ones_like(first)).view(copies, -1)
    totals = totals.clone()
    groups = _length_groups([(k, row, cont) for k, (row, cont) in enumerate(choices) if len(cont) > 1])
    for number, group in enumerate(groups):
        cache = out.cache if number == len(groups) - 1 else _branch(out.cache)
        totals[:, [k for k, _, _ in group]] += _continuations(handle, group, cache, mask, pad_id, copies, len(batch))
    return totals


def _continuations(handle, group, cache, mask, pad_id, copies: int, batch_rows: int) -> torch.Tensor:
    """One continuation group for every copy: (copies, group)."""
    device = handle.device
    base = torch.tensor([row for _, row, _ in group], device=device)
    rows = _tiled(base, copies) + torch.arange(copies, device=device).repeat_interleave(len(group)) * batch_rows
    cache.reorder_cache(rows)
    steps = max(len(cont) - 1 for _, _, cont in group)
    cont_ids = torch.full((len(group), steps), pad_id, dtype=torch.long)
    targets = torch.zeros((len(group), steps), dtype=torch.long)
    cont_mask = torch.zeros((len(group), steps), dtype=torch.long)
    for r, (_, _, cont) in enumerate(group):
        n = len(cont) - 1
        cont_ids[r, :n] = torch.tensor(cont[:-1])
        targets[r, :n] = torch.tensor(cont[1:])
        cont_mask[r, :n] = 1
    cont_ids, targets, cont_mask = (_tiled(t, copies).to(device) for t in (cont_ids, targets, cont_mask))
    start = mask.sum(-1)[rows].unsqueeze(1)
    out = handle.model(input_ids=cont_ids, attention_mask=torch.cat([mask[rows], cont_mask], dim=1),
                       position_ids=start + torch.arange(steps, device=device), cache=cache, use_cache=True)
    own = torch.arange(len(rows), device=device)
    positions = torch.arange(steps, device=device).expand(len(rows), steps)
    return final_layer(out, None, own, positions, targets, cont_mask).view(copies, -1)


@contextmanager
def _passing_through(handle: ModelHandle, copies: int) -> Iterator[None]:
    """Inside, copy c of a `copies`-times stacked batch passes block c (of the current model) unchanged."""
    def register(position, layer):
        def hook(module, args, kwargs, output):
            hidden = _hidden_in(args, kwargs)
            rows = hidden.shape[0] // copies
            out = output if isinstance(output, torch.Tensor) else output[0]
            out = out.clone()
            out[position * rows:(position + 1) * rows] = hidden[position * rows:(position + 1) * rows]
            return _with_hidden_out(output, out)
        return layer.register_forward_hook(hook, with_kwargs=True)

    with _hooked(handle.layers[:copies], register):
        yield


def stacked_choice_scores_without(handle: ModelHandle, items: Sequence[MCItem], positions: Sequence[int],
                                  group: int = 6, budget: int = 2048,
                                  progress: Callable[[int], None] | None = None) -> dict[int, list[torch.Tensor]]:
    """Per block position p: per item, the (choices,) continuation log-likelihoods of the model without p.

    The same numbers as `choice_scores_without` (up to the rounding of taller matrices), with runs of
    at most `group` adjacent candidates stacked into one replay.
    """
    positions = sorted(positions)
    runs: list[list[int]] = []
    for p in positions:
        if runs and p - runs[-1][0] < group and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    tokenizer = handle.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    units = build_units(tokenizer, items, model_max_length(handle.model))
    scores = {p: [[None] * item.num_choices for item in items] for p in positions}
    for batch in _batches(units, budget):
        order = [(pos, choice) for unit in batch for pos, choice, _ in unit.choices]
        with recording_inputs(handle, [run[0] for run in runs]) as recorded:
            _run_batch(handle, batch, pad_id, 1)
        for run in runs:
            start = run[0]
            feed = iter([_tiled(state, len(run)) for state in recorded[start]])
            with resumed_after(handle, start - 1, feed), _passing_through(handle, len(run)):
                stacked = _run_batch(handle, batch, pad_id, len(run)).cpu()
            for copy, p in enumerate(run):
                for (pos, choice), score in zip(order, stacked[copy]):
                    scores[p][pos][choice] = score
        if progress:
            progress(len({pos for pos, _ in order}))
    return {p: [torch.stack(per_choice) for per_choice in per_item] for p, per_item in scores.items()}
