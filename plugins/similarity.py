"""Similarity scorers: Block Influence (ShortGPT, Men et al. 2024) and angular distance (Gromov et al. 2024).

Both watch the residual stream through hooks on the decoder blocks during one forward pass per
batch and keep only running sums (one per layer, or per pair of layers): memory never grows with
the number of tokens, and no hidden state outlives its batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from drtframe import DrtframeError, Options, Scorer, ScoringContext, hookimpl, run_blocks, watch_blocks


class BlockInfluence(Scorer):
    """ShortGPT's Block Influence: mean over calibration tokens of 1 - cos(block input, block output)."""

    name = "block_influence"
    needs_calibration = True

    @torch.inference_mode()
    def score(self, ctx: ScoringContext) -> list[float]:
        handle = ctx.handle
        sums = torch.zeros(handle.num_layers, dtype=torch.float64, device=handle.device)
        tokens = 0

        def add(position, block_input, block_output):
            cos = F.cosine_similarity(block_input.float(), block_output.float(), dim=-1)  # row-wise
            sums[position] += (1 - cos).sum(dtype=torch.float64).to(sums.device)  # the block may run elsewhere

        with watch_blocks(handle, add):
            for ids in ctx.batches():
                run_blocks(handle, ids)
                tokens += ids.numel()
        return (sums / tokens).tolist()


@torch.inference_mode()
def angular_distances(ctx: ScoringContext) -> torch.Tensor:
    """(L+1, L+1) matrix: mean over samples of arccos(cos(h_a, h_b)) / pi at the last token.

    h_0 is the input of the first block and h_l the output of block l-1, so the run of n blocks
    starting at l has distance [l, l + n]: one forward per batch gives every n at once.
    """
    handle = ctx.handle
    size = handle.num_layers + 1
    last: list[torch.Tensor | None] = [None] * size
    total = torch.zeros(size, size, dtype=torch.float64, device=handle.device)
    samples = 0

    def keep_last_token(position, block_input, block_output):
        if position == 0:
            last[0] = block_input[:, -1]
        last[position + 1] = block_output[:, -1]

    with watch_blocks(handle, keep_last_token):
        for ids in ctx.batches():
            run_blocks(handle, ids)
            states = torch.stack([h.to(total.device) for h in last])  # blocks may run on several devices
            states = F.normalize(states.double(), dim=-1)  # (L+1, batch, hidden)
            cos = torch.einsum("abh,cbh->acb", states, states).clamp(-1, 1)
            total += (torch.arccos(cos) / math.pi).sum(-1)
            samples += len(ids)
    return total / samples


class AngularOptions(Options):
    n: int | None = None


class AngularDistance(Scorer):
    """Gromov et al.: arccos(cos(h_l, h_l+n))/pi at each sample's last token, for a run of n blocks."""

    name = "angular_distance"
    default_schedule = "contiguous"
    needs_calibration = True
    Options = AngularOptions

    def score(self, ctx: ScoringContext) -> list[float]:
        """Per-block scores: the distance across each single block (n = 1)."""
        if (self.options.n or 1) != 1:
            raise DrtframeError("angular_distance with n > 1 scores runs of blocks; use the contiguous schedule")
        return self.score_runs(ctx, 1)

    def score_runs(self, ctx: ScoringContext, n: int) -> list[float]:
        if self.options.n not in (None, n):
            raise DrtframeError(f"angular_distance has n={self.options.n} but the schedule removes {n} blocks; "
                                f"make them agree or leave n out")
        distances = angular_distances(ctx)
        return [distances[start, start + n].item() for start in range(ctx.handle.num_layers - n + 1)]


@hookimpl
def drtframe_register_scorers(register):
    register(BlockInfluence)
    register(AngularDistance)
