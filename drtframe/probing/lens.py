"""The logit lens (and the tuned lens) over every decoder layer, as a readout for the shared-context engine.

z_l = W_U * norm_f(h_l), or W_U * norm_f(T_l(h_l)) through the tuned lens's translators, at the positions that predict continuation tokens, h_l being block l's
output. The last layer is read from the model's own logits (final norm, head and any soft-capping
applied by the model itself), which is exactly what evaluation scores: lens accuracy at the last
layer equals `drtframe eval`'s acc.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import DrtframeError
from ..evaluation.items import MCItem
from ..evaluation.loglikelihood import Reads, choice_scores, final_layer
from ..forward.logits import row_logsumexp, row_top_indices
from ..forward.output_head import OutputHead
from ..models.handle import ModelHandle
from .profile import DecisionProfile, decision_profile
from .tuned_lens import READOUTS, TunedLens, tuned_lens_for

READ_DTYPE = torch.bfloat16  # the normaliser's product for layers before the last (exact=False)
EXACT_TOP = 32  # logits per row recomputed in float32 there: the terms that dominate the logsumexp
EXACT_ROWS = 256  # rows whose normaliser is one bfloat16 product (the product streams all of W_U)


def lens_readout(handle: ModelHandle, exact: bool = False, tuned: TunedLens | None = None,
                 relative: bool = False):
    """A readout returning one column per decoder layer (block outputs, in order).

    A read is log p(target) = z[target] - logsumexp(z) with z = W_U norm_f(h). The target logit is a
    float32 dot product with one row of W_U; only the normaliser needs the whole vocabulary. Unless
    `exact`, that product runs in bfloat16 (2-3x faster on CPU) and each row's 32 largest logits,
    which dominate the logsumexp, are recomputed in float32: on SmolLM2 a summed PIQA read moved by
    at most 0.017 (1.5 without the recomputation) and every layer's accuracy was unchanged. The last
    layer always comes from the model's own logits, exactly as evaluation scores it. The positions
    read are gathered from every block before the last and projected together (`exact`: in
    `OutputHead`'s float32 tiles): on CPU one large product beats one small product per layer.
    With a `tuned` lens each block's output goes through its translator first (the tuned readout), so
    the readout belongs to `handle`: build one per pruned model. `relative` leaves out the normaliser
    of each choice's first token, which every choice of an item reads at the same position (the
    context's last): scores then differ from log-probabilities by one constant per item and layer,
    which a softmax over choices (the decision profile) cancels. For one-token continuations (the
    letter format) no vocabulary product remains, which matters with Gemma's 262k-token vocabulary.
    """
    norm, head = handle.final_norm, OutputHead.of(handle)
    weight, bias, cap = head.weight, head.bias, head.cap
    cast = None if exact else weight.to(READ_DTYPE)

    def normalisers(normed: torch.Tensor) -> torch.Tensor:
        """logsumexp of the (capped) vocabulary logits of every row of `normed`, float32."""
        if cast is None:  # float32 logits, as the model computes them
            return head.logsumexp(normed)
        return torch.cat([normaliser(part) for part in normed.split(EXACT_ROWS)])

    def normaliser(part: torch.Tensor) -> torch.Tensor:
        """logsumexp of a few rows' logits: all of them from a bfloat16 product, the largest `EXACT_TOP`
        of each row (the terms that dominate the sum) recomputed in float32 (`row_logsumexp`'s chunks:
        on one 256-row product, 19 ms after the product instead of 49 ms for the whole batch at once)."""
        def exact_top(z: torch.Tensor, start: int) -> None:
            top = row_top_indices(z, min(EXACT_TOP, z.shape[-1]))
            exact = torch.einsum("rh,rkh->rk", part[start:start + len(z)].float(), weight[top].float())
            cap(z.scatter_(-1, top, exact if bias is None else exact + bias[top].float()))

        return row_logsumexp(F.linear(part.to(READ_DTYPE), cast, None if bias is None else bias.to(READ_DTYPE)),
                             exact_top)

    def readout(out, blocks, reads: Reads) -> torch.Tensor:
        # the last block is read from the model's own output, exactly as evaluation scores it
        last = final_layer(out, blocks, reads)
        if len(blocks) == 1:
            return last
        unique, inverse, real = reads.distinct
        # Blocks of a model spread by a device map leave their outputs where they ran: the positions
        # read are gathered there and brought to the head's device.
        where = weight.device
        picked = torch.stack([h.reshape(-1, h.shape[-1])[unique.to(h.device)].to(where)
                              for h in blocks[:-1]])  # (layers before the last, U, H)
        if tuned is not None:  # the blocks read are the handle's last ones (a replay runs only those)
            picked = tuned.translate(picked, handle.kept[len(handle.kept) - len(blocks):-1])
        layers, count = picked.shape[:2]
        at = (torch.arange(layers, device=where).unsqueeze(1) * count + inverse.to(where)).reshape(-1)
        normed = norm(picked.reshape(layers * count, -1))
        read = head.target_logits(normed[at], reads.targets[real].to(where).repeat(layers))
        # every read but, with `relative`, a choice's first token (column 0) is normalised
        normalised = torch.ones_like(reads.mask, dtype=torch.bool)
        normalised[:, 0] = not relative
        normalised = normalised[real].to(where).repeat(layers)
        needed, index = torch.unique(at[normalised], return_inverse=True)
        read[normalised] -= normalisers(normed[needed])[index]
        values = torch.zeros((layers, *reads.mask.shape), dtype=read.dtype, device=reads.mask.device)
        values[:, real] = read.view(layers, -1).to(reads.mask.device)
        return torch.cat([values.sum(-1), last.T]).T

    return readout


def readout_for(handle: ModelHandle, readout: str = "logit", exact: bool = False, relative: bool = False):
    """The per-layer readout called `readout` ('logit' or 'tuned', READOUTS) for `handle`."""
    if readout not in READOUTS:
        raise DrtframeError(f"unknown readout {readout!r}: choose one of {', '.join(READOUTS)}")
    return lens_readout(handle, exact=exact, tuned=tuned_lens_for(handle) if readout == "tuned" else None,
                        relative=relative)


def layer_scores(handle: ModelHandle, items: Sequence[MCItem], budget: int = 2048,
                 progress: Callable[[int], None] | None = None, exact: bool = False,
                 readout: str = "logit") -> list[torch.Tensor]:
    """Per item, a (choices, layers) tensor of summed continuation log-probabilities read through
    `readout` (`exact`: the normalisers of layers before the last in float32 too)."""
    return choice_scores(handle, items, readout_for(handle, readout, exact), hidden=True, budget=budget,
                         progress=progress)


def profile_readout(handle: ModelHandle, items: Sequence[MCItem], readout: str = "logit"):
    """The readout a decision profile of `items` is read through: choice-relative (`lens_readout`'s
    `relative`: no normaliser for the first token of each choice) when every item's choices share one
    context, so read their first token at one position."""
    shared = all(len(set(item.contexts)) == 1 for item in items)
    return readout_for(handle, readout, relative=shared)


def lens_profile(handle: ModelHandle, items: Sequence[MCItem], readout: str = "logit",
                 budget: int = 2048) -> DecisionProfile:
    """The decision profile of `handle` on `items` through the `readout` lens (`profile_readout`)."""
    scores = choice_scores(handle, items, profile_readout(handle, items, readout), hidden=True, budget=budget)
    return decision_profile(scores, [item.gold for item in items])
