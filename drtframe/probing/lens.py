"""The logit lens over every decoder layer, as a readout for the shared-context engine.

z_l = W_U * norm_f(h_l) at the positions that predict continuation tokens, h_l being block l's
output. The last layer is read from the model's own logits (final norm, head and any soft-capping
applied by the model itself), which is exactly what evaluation scores: lens accuracy at the last
layer equals `drtframe eval`'s acc.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..evaluation.items import MCItem
from ..evaluation.loglikelihood import choice_scores, distinct_positions, final_layer
from ..models.handle import ModelHandle

LENS_LOGITS = 100_000_000  # most vocabulary logits (rows x vocab) held at once: 400 MB in float32


def lens_readout(handle: ModelHandle, max_logits: int = LENS_LOGITS):
    """A readout returning one column per decoder layer (block outputs, in order).

    The positions read are gathered from every block before the last and projected together, in
    chunks of whole layers holding at most `max_logits` logits: on CPU the projection is bound by
    streaming W_U from memory, so one large product beats one small product per layer.
    """
    model = handle.model
    norm, head = handle.final_norm, model.get_output_embeddings()
    softcap = getattr(model.config, "final_logit_softcapping", None)

    def project(hidden: torch.Tensor) -> torch.Tensor:
        logits = head(norm(hidden))
        return torch.tanh(logits / softcap) * softcap if softcap else logits

    def readout(out, blocks, rows, positions, targets, mask) -> torch.Tensor:
        # Blocks of a model spread by a device map leave their outputs where they ran: the positions
        # read are gathered there and brought to the inputs' device; the head's hook takes them on.
        unique, inverse, real = distinct_positions(blocks[0].shape[1], rows, positions, mask)
        picked = [h.reshape(-1, h.shape[-1])[unique.to(h.device)].to(rows.device)
                  for h in blocks[:-1]]  # (U, H) per layer before the last
        per_chunk = max(1, max_logits // max(len(unique) * head.out_features, 1))
        wanted = targets[real]
        columns = []
        for chunk in (torch.stack(picked).split(per_chunk) if picked else ()):
            logprobs = F.log_softmax(project(chunk.reshape(-1, chunk.shape[-1])).float(), dim=-1)
            read = logprobs.device
            logprobs = logprobs.view(len(chunk), len(unique), -1)[:, inverse.to(read), wanted.to(read)].to(mask.device)
            values = torch.zeros((len(chunk), *mask.shape), dtype=logprobs.dtype, device=logprobs.device)
            values[:, real] = logprobs
            columns.append(values.sum(-1))
        # the last block is read from the model's own output, exactly as evaluation scores it
        columns.append(final_layer(out, blocks, rows, positions, targets, mask).T)
        return torch.cat(columns).T

    return readout


def layer_scores(handle: ModelHandle, items: Sequence[MCItem], budget: int = 2048,
                 progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """Per item, a (choices, layers) tensor of summed continuation log-probabilities under the lens."""
    return choice_scores(handle, items, lens_readout(handle), hidden=True, budget=budget, progress=progress)
