"""The Taylor scorer of Shortened LLaMA (Kim et al. 2024): first-order loss change of removing a block.

Removing a block is setting its weights to zero; to first order that changes the calibration loss
by -sum(W * dL/dW). As in the paper's code, the gradients of all calibration batches are summed,
each weight's |W * dL/dW| is summed over its elements, and a block scores the sum over its weights
(biases excluded). One forward and one backward pass per batch; only the blocks' gradients are kept.
"""

from __future__ import annotations

import torch

from drtframe import DrtframeError, Scorer, ScoringContext, hookimpl


class Taylor(Scorer):
    """Shortened LLaMA's Taylor: sum over a block's weights of |W * dL/dW| on the calibration loss."""

    name = "taylor"
    needs_calibration = True

    def score(self, ctx: ScoringContext) -> list[float]:
        if ctx.handle.offloaded:  # accelerate swaps offloaded weights in per forward: no gradient reaches them
            raise DrtframeError(f"taylor needs the gradient of every block weight, but the device map keeps "
                                f"{len(ctx.handle.offloaded)} weights off-device; give it more --max-memory "
                                f"or use another scorer")
        model = ctx.handle.model
        blocks = [[p for name, p in layer.named_parameters() if not name.endswith("bias")]
                  for layer in ctx.handle.layers]
        weights = [p for block in blocks for p in block]
        grads = [[torch.zeros_like(p, dtype=torch.float32) for p in block] for block in blocks]
        sums = [g for block in grads for g in block]  # the same tensors, in the order of `weights`
        saved = [p.requires_grad for p in weights]
        try:
            for p in weights:
                p.requires_grad_(True)
            with torch.enable_grad():
                for ids in ctx.batches():
                    loss = model(input_ids=ids, labels=ids, use_cache=False).loss
                    for total, grad in zip(sums, torch.autograd.grad(loss, weights)):
                        total += grad.float()
        finally:
            for p, flag in zip(weights, saved):
                p.requires_grad_(flag)
        return [sum((p.detach().float() * g).abs().sum().item() for p, g in zip(block, block_grads))
                for block, block_grads in zip(blocks, grads)]


@hookimpl
def drtframe_register_scorers(register):
    register(Taylor)
