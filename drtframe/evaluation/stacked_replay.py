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

from ..hidden_states import hidden_in, hooked, with_hidden_out, recording_inputs, resumed_after
from ..models.handle import ModelHandle
from .items import MCItem
from .loglikelihood import batches, build_units, final_layer, model_max_length, read_nothing, score_batch, tiled


@contextmanager
def _passing_through(handle: ModelHandle, copies: int) -> Iterator[None]:
    """Inside, copy c of a `copies`-times stacked batch passes block c (of the current model) unchanged."""
    def register(position, layer):
        def hook(module, args, kwargs, output):
            hidden = hidden_in(args, kwargs)
            rows = hidden.shape[0] // copies
            out = output if isinstance(output, torch.Tensor) else output[0]
            out = out.clone()
            out[position * rows:(position + 1) * rows] = hidden[position * rows:(position + 1) * rows]
            return with_hidden_out(output, out)
        return layer.register_forward_hook(hook, with_kwargs=True)

    with hooked(handle.layers[:copies], register):
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
    for batch in batches(units, budget):
        order = [(pos, choice) for unit in batch for pos, choice, _ in unit.choices]
        with recording_inputs(handle, [run[0] for run in runs]) as recorded:
            score_batch(handle, batch, pad_id, read_nothing, False)
        for run in runs:
            start = run[0]
            feed = iter([tiled(state, len(run)) for state in recorded[start]])
            with resumed_after(handle, start - 1, feed), _passing_through(handle, len(run)):
                stacked = score_batch(handle, batch, pad_id, final_layer, False, len(run))[:, 0].view(len(run), -1).cpu()
            for copy, p in enumerate(run):
                for (pos, choice), score in zip(order, stacked[copy]):
                    scores[p][pos][choice] = score
        if progress:
            progress(len({pos for pos, _ in order}))
    return {p: [torch.stack(per_choice) for per_choice in per_item] for p, per_item in scores.items()}
