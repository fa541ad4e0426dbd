"""Score the dense model and its pruned variants on one item set, sharing the dense model's work.

Removing blocks from j on leaves blocks 0..j-1 as they were, so the dense pass records the input of
every block that starts some variant's removals, at each forward, and a variant whose first
removed block is j replays those forwards
through the blocks after j only (`replaying_without`). Its scores are those of the pruned model run
whole (tests check this on every architecture and on SmolLM2); only the blocks it keeps after j run.

Per-layer readouts (the logit lens of the decision profile) read blocks before j from the dense
pass: they are the variant's own layers too. A perplexity benchmark's windows replay the same way:
its forwards, like an MC benchmark's, do not depend on the blocks kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from ..evaluation.items import MCItem
from ..evaluation.loglikelihood import choice_scores, final_layer
from ..evaluation.text_benchmark import TextItem
from ..evaluation.text_scores import text_scores
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
    def score(model: ModelHandle) -> list[torch.Tensor]:  # the tuned lens picks translators by the blocks kept
        return choice_scores(model, items, readout_for(model, readout) if per_layer else final_layer, per_layer,
                             budget, progress)

    return _variant_runs(handle, variants, score, replay, per_layer)


def text_variant_scores(handle: ModelHandle, items: Sequence[TextItem], variants: Sequence[Variant],
                        replay: bool = True, budget: int = 2048,
                        progress: Callable[[int], None] | None = None) -> Iterator[tuple[Variant, list[torch.Tensor]]]:
    """`variant_scores` for a perplexity benchmark's items (`text_scores`: per item, (windows, 2))."""
    return _variant_runs(handle, variants, lambda model: text_scores(model, items, budget, progress), replay)


def _variant_runs(handle: ModelHandle, variants: Sequence[Variant], score: Callable[[ModelHandle], list[torch.Tensor]],
                  replay: bool, per_layer: bool = False) -> Iterator[tuple[Variant, list[torch.Tensor]]]:
    """`score` (which runs the same forwards whatever blocks its model keeps) on the dense model, recording
    what the variants replay, then on each variant; with `per_layer`, each variant's columns for the
    blocks before its first removed one are the dense model's."""
    pruned = [v for v in variants if v]
    starts = sorted({handle.to_current((min(v),))[0] for v in pruned}) if replay else []
    dense = None
    recorded: dict[int, list[torch.Tensor]] = {}
    if () in variants or starts:
        with recording_inputs(handle, starts) as recorded:
            dense = score(handle)
        if () in variants:
            yield (), dense
    for variant in pruned:
        positions = handle.to_current(variant)
        if not replay:
            with handle.temporarily_without(variant) as whole:
                yield variant, score(whole)
            continue
        with replaying_without(handle, positions, recorded) as resumed:
            scores = score(resumed)
        if per_layer:  # the layers before the first removed block are the dense model's
            shared = handle.num_layers - len(variant) - scores[0].shape[1]
            scores = [torch.cat([d[:, :shared], s], dim=1) for d, s in zip(dense, scores)]
        yield variant, scores
