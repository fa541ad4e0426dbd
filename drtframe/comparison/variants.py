"""Score the dense model and its pruned variants on one item set, sharing the dense model's work.

Removing blocks from j on leaves blocks 0..j-1 as they were, so the dense pass records the input of
every block that starts some variant's removals, at each forward, and a variant whose first
removed block is j replays those forwards
through the blocks after j only (`replaying_without`). Its scores are those of the pruned model run
whole (tests check this on every architecture and on SmolLM2); only the blocks it keeps after j run.

Per-layer readouts (the logit lens of the decision profile) read blocks before j from the dense
pass: they are the variant's own layers too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from ..evaluation.items import MCItem
from ..evaluation.loglikelihood import Readout, choice_scores, final_layer
from ..forward.hidden_states import recording_inputs, replaying_without
from ..models.handle import ModelHandle
from ..probing.lens import readout_for
from .request import Variant



def variant_scores(handle: ModelHandle, items: Sequence[MCItem], variants: Sequence[Variant], per_layer: bool = False,
                   replay: bool = True, budget: int = 2048, progress: Callable[[int], None] | None = None,
                   readout: str = "logit") -> Iterator[tuple[Variant, list[torch.Tensor]]]:
    """Yield (variant, per-item (choices, columns) scores), the dense model () first, then each variant.

    Columns: the final layer (evaluation), or with `per_layer` one per block of that variant (the
    `readout` lens). The dense pass runs when a variant needs its recording even if () is not asked for, and is
    yielded only if asked. Without `replay` every variant runs whole.
    """
    def read(model: ModelHandle) -> Readout:  # the tuned lens picks translators by the blocks `model` kept
        return readout_for(model, readout) if per_layer else final_layer

    pruned = [v for v in variants if v]
    starts = sorted({handle.to_current((min(v),))[0] for v in pruned}) if replay else []
    dense = None
    recorded: dict[int, list[torch.Tensor]] = {}
    if () in variants or starts:
        with recording_inputs(handle, starts) as recorded:
            dense = choice_scores(handle, items, read(handle), per_layer, budget, progress)
        if () in variants:
            yield (), dense
    for variant in pruned:
        positions = handle.to_current(variant)
        if not replay:
            with handle.temporarily_without(variant) as whole:
                yield variant, choice_scores(whole, items, read(whole), per_layer, budget, progress)
            continue
        with replaying_without(handle, positions, recorded) as resumed:
            scores = choice_scores(resumed, items, read(resumed), per_layer, budget, progress)
        if per_layer:  # the layers before the first removed block are the dense model's
            shared = handle.num_layers - len(variant) - scores[0].shape[1]
            scores = [torch.cat([d[:, :shared], s], dim=1) for d, s in zip(dense, scores)]
        yield variant, scores
