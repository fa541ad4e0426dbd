"""Continuation log-likelihoods for many MC items, with the shared context evaluated once.

lm-eval runs every (context, choice) pair as its own sequence and projects every position onto the
vocabulary. Here a context and the continuations of all the choices scored against it share one row
of one forward: the context once, then the choices' tokens as a prefix tree (choices that begin
alike share those tokens), each attending to the context and to its own earlier tokens only (a
custom attention mask; positions restart after the context). The output projection is computed only
where a continuation token is predicted. Rows of similar length are batched under a token budget, so
long contexts (HellaSwag) never exhaust memory. For a model with a sliding attention window, a row
longer than the window holds one multi-token choice only, and is batched without a custom mask so
that the model's own window applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from ..forward.hidden_states import recording_inputs, replaying_without, watch_blocks
from ..forward.logits import row_log_softmax_at
from ..models.handle import ModelHandle
from .items import MCItem
from .tokenize import encode_pair, truncate

DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when the config names no context size
LOGITS = 1024 * 49_152  # most vocabulary logits one forward projects (200 MB in float32; 1,024 rows of SmolLM2's)
# A batch's shortest row is at least SLACK of its longest. 200 items, SmolLM2, in-process, alternated
# rounds: ARC-Easy 12.5 s at 0.9 against 13.4 s at 0.7 and 14.5 s at 0.95; PIQA 19.7 s, 21.0 s, 20.9 s.
SLACK = 0.9


@dataclass
class Unit:
    """One row of a forward: a context and the choices (item, choice, continuation ids) scored against it."""

    context: tuple[int, ...]
    choices: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)

    @cached_property
    def tree(self) -> tuple[list[int], list[int], list[list[int]]]:
        """The row after the context: every distinct prefix of the continuations but their last token,
        once, as its last token (choices that begin alike share those tokens). Returns those tokens,
        each one's parent among them (-1: the context), and per choice the indices of its prefixes,
        shortest first. (Read once the choices are complete.)"""
        index: dict[tuple[int, ...], int] = {}
        tokens: list[int] = []
        parents: list[int] = []
        paths: list[list[int]] = []
        for _, _, cont in self.choices:
            path: list[int] = []
            for end in range(1, len(cont)):
                if cont[:end] not in index:
                    index[cont[:end]] = len(tokens)
                    tokens.append(cont[end - 1])
                    parents.append(path[-1] if path else -1)
                path.append(index[cont[:end]])
            paths.append(path)
        return tokens, parents, paths

    def __len__(self) -> int:
        """Tokens in the row: the context, then the prefix tree of the continuations."""
        return len(self.context) + len(self.tree[0])

    def reads(self) -> int:
        """Distinct positions read: the context's last, then every token of the prefix tree."""
        return len(self) - len(self.context) + 1

    def segments(self) -> int:
        """Continuations with tokens in the row: a row with two or more needs a custom attention mask."""
        return sum(len(cont) > 1 for _, _, cont in self.choices)


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


def attention_window(model) -> int | None:
    """The sliding window the model's configuration names, whether or not a block kept uses it: a model
    and its pruned variants must lay their rows out alike (replays feed one's recording to the other)."""
    return getattr(model.config, "sliding_window", None)


def _split(unit: Unit, window: int | None) -> list[Unit]:
    """`unit` as one row, or, if that row exceeds `window`, one row per multi-token choice (the
    one-token choices, read at the context's last position, ride in the first)."""
    if window is None or len(unit) <= window or unit.segments() <= 1:
        return [unit]
    single = [c for c in unit.choices if len(c[2]) == 1]
    longer = [c for c in unit.choices if len(c[2]) > 1]
    return [Unit(unit.context, single + longer[:1])] + [Unit(unit.context, [c]) for c in longer[1:]]


def build_units(tokenizer, items: Sequence[MCItem], max_length: int, window: int | None = None) -> list[Unit]:
    """Encode every pair the lm-eval way, group choices that share a context into rows (split where
    `window` requires), longest row first."""
    choices: dict[tuple[int, ...], list] = {}
    for pos, item in enumerate(items):
        for choice, (context, continuation) in enumerate(zip(item.contexts, item.continuations)):
            pair = truncate(encode_pair(tokenizer, context, continuation), max_length)
            choices.setdefault(pair.context, []).append((pos, choice, pair.continuation))
    rows = [row for context, group in choices.items() for row in _split(Unit(context, group), window)]
    return sorted(rows, key=lambda u: -len(u))


def units_for(handle: ModelHandle, items: Sequence[MCItem]) -> list[Unit]:
    """`build_units` for `handle`'s tokenizer, context size and attention window."""
    return build_units(handle.tokenizer, items, model_max_length(handle.model), attention_window(handle.model))


def batches(units: list[Unit], budget: int, slack: float = SLACK, window: int | None = None,
            max_reads: int = LOGITS // 49_152) -> list[list[Unit]]:
    """Consecutive rows (longest first) cut into batches that fit `budget` padded tokens and
    `max_reads` positions read, whose shortest row is at least `slack` of the longest, and that never
    put a row longer than `window` beside one needing a custom mask (which would override the window)."""
    batches: list[list[Unit]] = []
    reads = 0
    for unit in units:
        current = batches[-1] if batches else None
        if (current and len(unit) >= slack * len(current[0]) and len(current[0]) * (len(current) + 1) <= budget
                and reads + unit.reads() <= max_reads
                and (window is None or (len(unit) > window) == (len(current[0]) > window))):
            current.append(unit)
            reads += unit.reads()
        else:
            batches.append([unit])
            reads = unit.reads()
    return batches


@dataclass
class Reads:
    """What one forward is read at: per choice (row of these tensors), the batch row holding it, the
    positions predicting its tokens (column 0, its first token, at its context's last position), the
    target tokens and a mask of real reads; `width` is the forward's sequence length."""

    rows: torch.Tensor
    positions: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    width: int

    @cached_property
    def distinct(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat indices (into batch x width) of the distinct positions read, in increasing order; the
        index among them of each real read; the mask of real reads."""
        real = self.mask.bool()
        keys = (self.rows.unsqueeze(1) * self.width + self.positions)[real]
        unique, inverse = torch.unique(keys, return_inverse=True)
        return unique, inverse, real


# A readout turns one forward pass into per-choice scores: given the model output (whose logits,
# (positions, vocabulary), hold the distinct positions read, in order), every block's output hidden
# state (when asked for) and the reads, it returns one column per quantity read (the final layer
# for evaluation; every layer for the logit-lens probes).
Readout = Callable[[Any, list | None, Reads], torch.Tensor]


def final_layer(out, blocks, reads: Reads) -> torch.Tensor:
    """The model's own output distribution, as lm-eval scores it: (N, 1). torch's float32 `log_softmax`,
    as lm-eval takes it (`row_log_softmax_at`): against float64 it reads each token about 1e-5 high
    on CPU, and lm-eval's numbers carry that. A more exact logsumexp (`row_logsumexp`, within 2e-6 of
    float64) moved 300 PIQA items' log-likelihoods up to 1.2e-3 away from lm-eval's instead of 9.2e-5."""
    return _final_reads(out, reads, greedy=False)


def final_layer_greedy(out, blocks, reads: Reads) -> torch.Tensor:
    """`final_layer` and lm-eval's `is_greedy` (1.0 where every continuation token is its position's
    argmax, else 0.0): (N, 2). LAMBADA's accuracy is the second column."""
    return _final_reads(out, reads, greedy=True)


def _final_reads(out, reads: Reads, greedy: bool) -> torch.Tensor:
    _, inverse, real = reads.distinct
    values = torch.zeros(reads.mask.shape, dtype=torch.float32, device=out.logits.device)
    hit = torch.empty_like(inverse, dtype=torch.bool) if greedy else None
    values[real] = row_log_softmax_at(out.logits, inverse, reads.targets[real], greedy=hit)
    if hit is None:
        return values.sum(-1).unsqueeze(1)
    hits = torch.ones_like(real)
    hits[real] = hit
    return torch.stack([values.sum(-1), hits.all(-1).float()], dim=1)


def read_nothing(out, blocks, reads: Reads) -> torch.Tensor:
    """A readout that reads nothing: for forwards run only to record what the blocks see."""
    return torch.zeros((len(reads.rows), 1), device=reads.rows.device)


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


def _layout(batch: list[Unit], pad_id: int, dtype: torch.dtype):
    """A batch's input ids, positions and attention mask (right-padded), and its reads (on the CPU)."""
    width = max(len(unit) for unit in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(batch), width), dtype=torch.long)
    choices = [(row, cont) for row, unit in enumerate(batch) for _, _, cont in unit.choices]
    steps = max(len(cont) for _, cont in choices)
    read_at, targets, mask = (torch.zeros((len(choices), steps), dtype=torch.long) for _ in range(3))
    k = 0
    for row, unit in enumerate(batch):
        length = len(unit.context)
        tokens, parents, paths = unit.tree
        ids[row, :len(unit)] = torch.tensor(unit.context + tuple(tokens))
        tree_positions: list[int] = []  # a tree token sits one position after its parent, or after the context
        for parent in parents:
            tree_positions.append(tree_positions[parent] + 1 if parent >= 0 else length)
        positions[row, :len(unit)] = torch.tensor([*range(length), *tree_positions])
        for (_, _, cont), path in zip(unit.choices, paths):
            read_at[k, 0], read_at[k, 1:len(cont)] = length - 1, torch.tensor(path, dtype=torch.long) + length
            targets[k, :len(cont)], mask[k, :len(cont)] = torch.tensor(cont), 1
            k += 1
    if any(unit.segments() > 1 for unit in batch):
        attention = _attention(batch, width, dtype)
    else:  # every row a plain sequence: the padding mask, and the model builds its own causal and sliding masks
        attention = (torch.arange(width) < torch.tensor([len(unit) for unit in batch]).unsqueeze(1)).long()
    rows = torch.tensor([row for row, _ in choices])
    return ids, positions, attention, Reads(rows, read_at, targets, mask, width)


def _attention(batch: list[Unit], width: int, dtype: torch.dtype) -> torch.Tensor:
    """The additive (batch, 1, width, width) mask of the rows of `batch`: a context token sees the
    context up to itself, a token of the prefix tree sees the context and its own prefix (its
    ancestors and itself), padding sees the context."""
    allowed = torch.zeros((len(batch), width, width), dtype=torch.bool)
    for row, unit in enumerate(batch):
        length = len(unit.context)
        allowed[row, :, :length] = True
        allowed[row, :length, :length] = torch.ones(length, length, dtype=torch.bool).tril()
        for i, parent in enumerate(unit.tree[1]):
            if parent >= 0:
                allowed[row, length + i] = allowed[row, length + parent]
            allowed[row, length + i, length + i] = True
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min).unsqueeze(1)


@torch.inference_mode()
def score_batch(handle: ModelHandle, batch: list[Unit], pad_id: int, readout: Readout, hidden: bool,
                copies: int = 1) -> torch.Tensor:
    """Readout columns for every choice of every row in `batch`, in order: (copies x choices, columns).

    With `copies`, the batch runs stacked that many times along the batch dimension (copy-major), for
    forwards whose copies differ inside the model (stacked replays of several candidates).
    """
    device = handle.device
    ids, positions, attention, reads = _layout(batch, pad_id, handle.model.get_input_embeddings().weight.dtype)
    ids, positions, attention = (tiled(t, copies).to(device) for t in (ids, positions, attention))
    reads = Reads(_stacked_rows(reads.rows, copies, len(batch)).to(device),
                  *(tiled(t, copies).to(device) for t in (reads.positions, reads.targets, reads.mask)), reads.width)
    keep = torch.zeros(ids.numel(), dtype=torch.bool, device=device)  # the head projects the positions read only
    if readout is not read_nothing:  # a recording pass reads no logits
        keep[reads.distinct[0]] = True
    out, blocks = _forward(handle, hidden, input_ids=ids, attention_mask=attention, position_ids=positions,
                           use_cache=False, logits_to_keep=keep.view(ids.shape))
    return readout(out, blocks, reads)


def _stacked_rows(rows: torch.Tensor, copies: int, per_copy: int) -> torch.Tensor:
    """`rows` of every copy, copy-major, in a batch stacked `copies` times from `per_copy` rows each."""
    return tiled(rows, copies) + torch.arange(copies).repeat_interleave(len(rows)) * per_copy


def forward_batches(handle: ModelHandle, items: Sequence[MCItem], budget: int) -> list[list[Unit]]:
    """The rows `items` need on `handle`, cut into batches (`batches`)."""
    return unit_batches(handle, units_for(handle, items), budget)


def unit_batches(handle: ModelHandle, units: list[Unit], budget: int) -> list[list[Unit]]:
    """`units` (longest first) cut into batches for `handle`'s attention window and vocabulary."""
    vocabulary = handle.model.get_output_embeddings().weight.shape[0]
    return batches(units, budget, window=attention_window(handle.model), max_reads=max(1, LOGITS // vocabulary))


def _collect(handle: ModelHandle, items: Sequence[MCItem], budget: int, progress: Callable[[int], None] | None,
             scored: Callable[[list[Unit], int], dict[Any, torch.Tensor]]) -> dict[Any, list[torch.Tensor]]:
    """Run `scored(batch, pad_id)` (one (choices, columns) tensor per key) over every batch; per key,
    per item, a (choices, columns) tensor."""
    return collected(items, forward_batches(handle, items, budget), pad_token(handle.tokenizer), progress, scored)


def collected(items: Sequence[MCItem], batches: Iterable[list[Unit]], pad_id: int,
              progress: Callable[[int], None] | None,
              scored: Callable[[list[Unit], int], dict[Any, torch.Tensor]]) -> dict[Any, list[torch.Tensor]]:
    """`_collect` over the given `batches` of `items`' rows (those a recording ran, for instance)."""
    results: dict[Any, list[list[torch.Tensor | None]]] = {}
    remaining = [item.num_choices for item in items]
    for batch in batches:
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
    every candidate block; candidate p then replays that forward through the blocks after p only, fed
    block p's recorded input (`resumed_after`): blocks before p are the same with or without p.
    Without `cache`, the model without p runs whole (the reference the cache is checked against).
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
