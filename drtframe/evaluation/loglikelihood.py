"""Continuation log-likelihoods for many MC items, with the shared context evaluated once.

lm-eval runs every (context, choice) pair as its own sequence and projects every position onto
the vocabulary. Here each distinct context runs once (left-padded batches of similar length) and
keeps its KV cache; the choices then run only their own tokens against a copy of that cache, and
the output projection is computed only where a continuation token is predicted. Batches are
bounded by a token budget, so long contexts (HellaSwag) never exhaust memory.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicLayer

from ..hidden_states import recording_inputs, replaying_without, watch_blocks
from ..models.handle import ModelHandle
from .items import MCItem
from .tokenize import encode_pair, truncate

DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when the config names no context size
LOGIT_ROWS = 512  # most continuation positions projected onto the vocabulary in one forward
# Padding tolerated for fewer, larger forwards: a batch's shortest context is at least SLACK of its
# longest, a continuation group's longest at most PADDING times its shortest. On CPU small forwards
# cost more than padding: 200 ARC-Easy items took 16.1 s at 0.7 / 1.6 against 18.9 s at 0.9 / 1.3
# (best of three, SmolLM2, benchmarks/eval_speed.py's items), log-likelihoods within 5e-5.
SLACK = 0.7
PADDING = 1.6


@dataclass
class Unit:
    """One distinct context and the choices (item, choice, continuation ids) scored against it."""

    context: tuple[int, ...]
    choices: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)


def pad_token(tokenizer) -> int:
    """The id batches are padded with: the tokenizer's pad token, else its end of sequence."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def model_max_length(model) -> int:
    """The context size lm-eval's HFLM would use for this model."""
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int):
            return value
    return DEFAULT_MAX_LENGTH


def build_units(tokenizer, items: Sequence[MCItem], max_length: int) -> list[Unit]:
    """Encode every pair the lm-eval way and group choices that share a context."""
    units: dict[tuple[int, ...], Unit] = {}
    for pos, item in enumerate(items):
        for choice, (context, continuation) in enumerate(zip(item.contexts, item.continuations)):
            pair = truncate(encode_pair(tokenizer, context, continuation), max_length)
            units.setdefault(pair.context, Unit(pair.context)).choices.append((pos, choice, pair.continuation))
    return sorted(units.values(), key=lambda u: -len(u.context))


def batches(units: list[Unit], budget: int, slack: float = SLACK) -> list[list[Unit]]:
    """Consecutive units (longest context first) cut into batches that fit `budget` padded context
    tokens, and whose shortest context is at least `slack` of the longest (little padding)."""
    batches: list[list[Unit]] = []
    for unit in units:
        current = batches[-1] if batches else None
        if (current and len(unit.context) >= slack * len(current[0].context)
                and len(current[0].context) * (len(current) + 1) <= budget):
            current.append(unit)
        else:
            batches.append([unit])
    return batches


# A readout turns one forward pass into per-choice scores: given the model output, every block's
# output hidden state (when asked for), the row and positions each choice is predicted from, its
# target tokens and a mask, it returns one column per quantity read (the final layer for
# evaluation; every layer for the logit-lens probes).
Readout = Callable[[Any, list | None, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def summed_logprobs(states: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor,
                    positions: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per choice, the summed log-probability of its targets: (N,).

    `states` is (batch, positions, features) and `project` maps features to vocabulary logits. Each
    distinct unpadded (row, position) is projected and normalised once, however many choices read it
    (all choices of an item read the last context position).
    """
    unique, inverse, real = distinct_positions(states.shape[1], rows, positions, mask)
    logprobs = F.log_softmax(project(states.reshape(-1, states.shape[-1])[unique]).float(), dim=-1)
    values = torch.zeros(mask.shape, dtype=logprobs.dtype, device=logprobs.device)
    values[real] = logprobs[inverse, targets[real]]
    return values.sum(-1)


def distinct_positions(width: int, rows: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor):
    """Flat indices (into batch x width) of the distinct unpadded positions read, the index of each
    read among them, and the mask of real reads."""
    keys = rows.unsqueeze(1) * width + positions % width  # position -1 is the last one
    real = mask.bool()
    unique, inverse = torch.unique(keys[real], return_inverse=True)
    return unique, inverse, real


def final_layer(out, blocks, rows, positions, targets, mask) -> torch.Tensor:
    """The model's own output distribution, as lm-eval scores it: (N, 1)."""
    return summed_logprobs(out.logits, lambda logits: logits, rows, positions, targets, mask).unsqueeze(1)


def read_nothing(out, blocks, rows, positions, targets, mask) -> torch.Tensor:
    """A readout that reads nothing: for forwards run only to record what the blocks see."""
    return torch.zeros((len(rows), 1), device=rows.device)


def _forward(handle: ModelHandle, hidden: bool, **inputs) -> tuple[Any, list | None]:
    """The model's output and, if `hidden`, every block's output hidden state.

    Block outputs are recorded by hooks on the blocks present now: transformers' own
    `output_hidden_states` recording is attached once and does not follow blocks removed in place.
    """
    if not hidden:
        return handle.model(**inputs), None
    blocks: list = [None] * handle.num_layers

    def keep(position, block_input, block_output):
        blocks[position] = block_output

    with watch_blocks(handle, keep):
        return handle.model(**inputs), blocks


def tiled(x: torch.Tensor, copies: int) -> torch.Tensor:
    """`x` stacked `copies` times along its first dimension."""
    return x.repeat(copies, *([1] * (x.dim() - 1)))


@torch.inference_mode()
def score_batch(handle: ModelHandle, batch: list[Unit], pad_id: int, readout: Readout, hidden: bool,
                copies: int = 1, padding: float = PADDING) -> torch.Tensor:
    """Readout columns for every choice of every unit in `batch`, in order: (copies x choices, columns).

    With `copies`, the batch runs stacked that many times along the batch dimension (copy-major), for
    forwards whose copies differ inside the model (stacked replays of several candidates). `padding`
    cuts the continuation groups (`length_groups`): forwards to be replayed must use the same.
    """
    width = max(len(u.context) for u in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, unit in enumerate(batch):
        ids[row, width - len(unit.context):] = torch.tensor(unit.context)
        mask[row, width - len(unit.context):] = 1
    device = handle.device
    ids, mask = tiled(ids, copies).to(device), tiled(mask, copies).to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out, blocks = _forward(handle, hidden, input_ids=ids, attention_mask=mask, position_ids=positions,
                           use_cache=True, logits_to_keep=1)

    choices = [(row, cont) for row, unit in enumerate(batch) for _, _, cont in unit.choices]
    rows = _stacked_rows([row for row, _ in choices], copies, len(batch), device)
    first = tiled(torch.tensor([[cont[0]] for _, cont in choices], device=device), copies)
    totals = readout(out, blocks, rows, torch.full_like(first, -1), first, torch.ones_like(first)).clone()
    longer = [(k, row, cont) for k, (row, cont) in enumerate(choices) if len(cont) > 1]
    groups = length_groups(longer, padding=padding)
    for number, group in enumerate(groups):
        last = number == len(groups) - 1  # the last group may consume the batch's own cache
        cache = out.cache if last else branch(out.cache)
        picked = _stacked_rows([k for k, _, _ in group], copies, len(choices), device)
        totals[picked] += _score_continuations(handle, group, cache, mask, pad_id, readout, hidden, copies,
                                               len(batch))
    return totals


def _stacked_rows(rows: list[int], copies: int, per_copy: int, device) -> torch.Tensor:
    """`rows` of every copy, copy-major, in a batch stacked `copies` times from `per_copy` rows each."""
    base = torch.tensor(rows, device=device, dtype=torch.long)
    return tiled(base, copies) + torch.arange(copies, device=device).repeat_interleave(len(rows)) * per_copy


def branch(cache):
    """A copy of `cache` that a continuation pass may reorder and extend while `cache` stays as it is.

    Dynamic layers replace their tensors on every update instead of writing into them, so copying
    the layer objects suffices; the rows a group needs are then copied once, by its reorder. Any
    other cache is deep-copied.
    """
    layers = getattr(cache, "layers", None)
    if layers is None or not all(isinstance(layer, DynamicLayer) for layer in layers):
        return copy.deepcopy(cache)
    branch = copy.copy(cache)
    branch.layers = [copy.copy(layer) for layer in layers]
    return branch


def reorder_rows(cache, rows: torch.Tensor) -> None:
    """Keep, in order, the cached `rows` of every layer. A layer that ran only a prefix of the batch's
    rows (a block of a stacked replay, `stacked_replay`) keeps the picked rows within its prefix."""
    top = int(rows.max())
    for layer in cache.layers:
        held = layer.keys.shape[0] if getattr(layer, "keys", None) is not None else top + 1
        layer.reorder_cache(rows if held > top else rows[rows < held])


def length_groups(choices: list, max_positions: int = LOGIT_ROWS, padding: float = PADDING) -> list[list]:
    """Choices sorted by length, cut where the group's longest would exceed `padding` times its
    shortest or the group would predict more than `max_positions` tokens (each needs a vocabulary-sized
    row)."""
    groups: list[list] = []
    for choice in sorted(choices, key=lambda c: len(c[2])):
        steps = len(choice[2]) - 1
        if (groups and steps <= padding * (len(groups[-1][0][2]) - 1)
                and steps * (len(groups[-1]) + 1) <= max_positions):
            groups[-1].append(choice)
        else:
            groups.append([choice])
    return groups


def _score_continuations(handle, group, cache, mask, pad_id, readout: Readout, hidden: bool, copies: int,
                         batch_rows: int) -> torch.Tensor:
    """Run each choice's continuation tokens but the last against its context's cache, in every copy."""
    device = handle.device
    rows = _stacked_rows([row for _, row, _ in group], copies, batch_rows, device)
    reorder_rows(cache, rows)
    steps = max(len(cont) - 1 for _, _, cont in group)
    cont_ids = torch.full((len(group), steps), pad_id, dtype=torch.long)
    targets = torch.zeros((len(group), steps), dtype=torch.long)
    cont_mask = torch.zeros((len(group), steps), dtype=torch.long)
    for r, (_, _, cont) in enumerate(group):
        n = len(cont) - 1
        cont_ids[r, :n] = torch.tensor(cont[:-1])
        targets[r, :n] = torch.tensor(cont[1:])
        cont_mask[r, :n] = 1
    cont_ids, targets, cont_mask = (tiled(t, copies).to(device) for t in (cont_ids, targets, cont_mask))
    start = mask.sum(-1)[rows].unsqueeze(1)
    out, blocks = _forward(handle, hidden, input_ids=cont_ids, attention_mask=torch.cat([mask[rows], cont_mask], dim=1),
                           position_ids=start + torch.arange(steps, device=device), cache=cache, use_cache=True,
                           logits_to_keep=1 if readout is read_nothing else 0)  # a recording pass reads no logits
    own = torch.arange(len(rows), device=device)
    return readout(out, blocks, own, torch.arange(steps, device=device).expand(len(rows), steps), targets, cont_mask)


def _collect(handle: ModelHandle, items: Sequence[MCItem], budget: int, progress: Callable[[int], None] | None,
             scored: Callable[[list[Unit], int], dict[Any, torch.Tensor]]) -> dict[Any, list[torch.Tensor]]:
    """Run `scored(batch, pad_id)` (one (choices, columns) tensor per key) over every batch; per key,
    per item, a (choices, columns) tensor."""
    pad_id = pad_token(handle.tokenizer)
    units = build_units(handle.tokenizer, items, model_max_length(handle.model))
    results: dict[Any, list[list[torch.Tensor | None]]] = {}
    remaining = [item.num_choices for item in items]
    for batch in batches(units, budget):
        order = [(pos, choice) for unit in batch for pos, choice, _ in unit.choices]
        for key, scores in scored(batch, pad_id).items():
            per_item = results.setdefault(key, [[None] * item.num_choices for item in items])
            for (pos, choice), score in zip(order, scores.cpu()):
                per_item[pos][choice] = score
        finished = 0
        for pos, _ in order:
            remaining[pos] -= 1
            finished += remaining[pos] == 0
        if progress and finished:
            progress(finished)
    return {key: [torch.stack(per_choice) for per_choice in per_item] for key, per_item in results.items()}


def choice_scores(handle: ModelHandle, items: Sequence[MCItem], readout: Readout = final_layer, hidden: bool = False,
                  budget: int = 2048, progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """Per item, a (choices, columns) tensor of what `readout` sums over each continuation.

    `hidden` hands the readout every block's output hidden state; `budget` caps the padded tokens per
    forward pass; `progress(n)` is told when n items finish.
    """
    def scored(batch, pad_id):
        return {None: score_batch(handle, batch, pad_id, readout, hidden)}

    return _collect(handle, items, budget, progress, scored)[None]


def choice_scores_without(handle: ModelHandle, items: Sequence[MCItem], positions: Sequence[int],
                          cache: bool = True, budget: int = 2048,
                          progress: Callable[[int], None] | None = None) -> dict[int, list[torch.Tensor]]:
    """Per block position p: per item, the (choices,) continuation log-likelihoods of the model without p.

    With `cache`, each batch first runs the whole model (no output read), recording the input of
    every candidate block at each of its forwards (the context pass, then the continuation passes
    against its KV cache); candidate p
    then replays those forwards through the blocks after p only, fed block p's recorded inputs
    (`resumed_after`): blocks before p are the same with or without p. Without `cache`, the model
    without p runs whole (the reference the cache is checked against).
    """
    def scored(batch, pad_id):
        if cache:
            with recording_inputs(handle, positions) as recorded:  # per position, one input per forward
                score_batch(handle, batch, pad_id, read_nothing, False)
        scores = {}
        for p in positions:
            skipped = (replaying_without(handle, (p,), recorded) if cache
                       else handle.temporarily_without((handle.kept[p],)))
            with skipped:
                scores[p] = score_batch(handle, batch, pad_id, final_layer, False)[:, 0]
        return scores

    return _collect(handle, items, budget, progress, scored)


def loglikelihoods(handle: ModelHandle, items: Sequence[MCItem], budget: int = 2048,
                   progress: Callable[[int], None] | None = None) -> list[list[float]]:
    """Per item, per choice: the summed log-probability of the continuation given its context."""
    return [scores[:, 0].tolist() for scores in choice_scores(handle, items, budget=budget, progress=progress)]
