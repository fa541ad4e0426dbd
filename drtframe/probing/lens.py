"""The logit lens over every decoder layer, as a readout for the shared-context engine.

z_l = W_U * norm_f(h_l) at the positions that predict continuation tokens, h_l being block l's
output. The last layer is read from the model's own logits (final norm, head and any soft-capping
applied by the model itself), which is exactly what evaluation scores: lens accuracy at the last
layer equals `drtframe eval`'s acc.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..evaluation.items import MCItem
from ..evaluation.loglikelihood import choice_scores, final_layer, gather_logprobs
from ..models.handle import ModelHandle


def lens_readout(handle: ModelHandle):
    """A readout returning one column per decoder layer (block outputs, in order)."""
    model = handle.model
    norm, head = handle.final_norm, model.get_output_embeddings()
    softcap = getattr(model.config, "final_logit_softcapping", None)

    def project(hidden: torch.Tensor) -> torch.Tensor:
        logits = head(norm(hidden))
        return torch.tanh(logits / softcap) * softcap if softcap else logits

    def readout(out, blocks, rows, positions, targets, mask) -> torch.Tensor:
        index = (rows.unsqueeze(1), positions)
        # blocks before the last are read through norm_f and W_U; the last is the model's own output
        columns = [gather_logprobs(project(h[index]), targets, mask) for h in blocks[:-1]]
        columns.append(final_layer(out, blocks, rows, positions, targets, mask)[:, 0])
        return torch.stack(columns, dim=1)

    return readout


def layer_scores(handle: ModelHandle, items: Sequence[MCItem], budget: int = 2048,
                 progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """Per item, a (choices, layers) tensor of summed continuation log-probabilities under the lens."""
    return choice_scores(handle, items, lens_readout(handle), hidden=True, budget=budget, progress=progress)
