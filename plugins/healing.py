"""`linear_ls`: a training-free linear patch across each run of removed blocks, folded into the weights.

ReplaceMe (2025) in closed form. For a run of removed blocks [s, e), let X be the MLP output of
block s-1 (what its output projection adds to the residual stream) and h_l the residual stream
after block l, on the dense model over the calibration tokens (padding left out). Without the run,
block s-1's output h_{s-1} should become h_{e-1}; replacing X by X T does that best, in least
squares, for T = (X^T X + a I)^-1 X^T Y with Y = h_{e-1} - h_{s-1} + X, solved in float64 with a
ridge a = `ridge` x the mean of diag(X^T X) (scale-free). T is folded into the output projection of
block s-1 (W <- T^T W, b <- T^T b), so the healed model is the same architecture with other
weights. Every run of a non-contiguous removal gets its own T from the same pass. A run starting at
block 0 has no block before it: it is left as it is, and the record says so.
"""

from __future__ import annotations

import torch

from drtframe import (DrtframeError, Healer, HealingContext, Options, get_path, hookimpl, watch_blocks)


class LinearLSOptions(Options):
    ridge: float = 1e-4  # relative to the mean diagonal of X^T X
    tokens: int = 16384  # most calibration tokens fitted on (the first ones)


class _Normal:
    """Running sums of one run's normal equations (float64, on the model's device)."""

    def __init__(self, hidden: int, device) -> None:
        zeros = lambda: torch.zeros(hidden, hidden, dtype=torch.float64, device=device)  # noqa: E731
        self.xtx, self.xty = zeros(), zeros()
        self.yty = self.xtx_trace = 0.0
        self.tokens = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.double(), y.double()
        self.xtx += x.T @ x
        self.xty += x.T @ y
        self.yty += float((y * y).sum())
        self.tokens += len(x)

    def solve(self, ridge: float) -> tuple[torch.Tensor, float, float]:
        """T, the absolute ridge, and the share of the unpatched (T = I) squared error that T removes."""
        alpha = ridge * float(self.xtx.diagonal().mean())
        eye = torch.eye(len(self.xtx), dtype=torch.float64, device=self.xtx.device)
        t = torch.linalg.solve(self.xtx + alpha * eye, self.xty)
        error = lambda m: self.yty - 2 * float((m * self.xty).sum()) + float((m * (self.xtx @ m)).sum())  # noqa: E731
        before = error(eye)
        return t, alpha, (1 - error(t) / before) if before > 0 else 0.0


def fold(module: torch.nn.Module, t: torch.Tensor) -> None:
    """Make `module`'s output y become y T: W <- T^T W for a Linear (y = x W^T + b), W <- W T for
    GPT-2's Conv1D (y = x W + b); the bias likewise."""
    with torch.no_grad():
        t = t.to(module.weight.device, module.weight.dtype)
        if isinstance(module, torch.nn.Linear):
            module.weight.copy_(t.T @ module.weight)
        else:
            module.weight.copy_(module.weight @ t)
        if module.bias is not None:
            module.bias.copy_(module.bias @ t)


class LinearLS(Healer):
    """ReplaceMe-style least-squares linear patch per removed run, folded into the preceding MLP output."""

    name = "linear_ls"
    Options = LinearLSOptions

    def heal(self, ctx: HealingContext) -> dict:
        path = ctx.handle.architecture.mlp_out_path
        record = []
        for (s, e), fit in self.fit(ctx).items():
            if fit is None:
                record.append({"run": [s, e - 1], "folded_into": None,
                               "note": "starts at block 0: no block before it to fold a patch into; left unhealed"})
                continue
            t, alpha, closed, tokens = fit
            fold(get_path(ctx.handle.layers[ctx.handle.to_current((s - 1,))[0]], path), t)
            record.append({"run": [s, e - 1], "folded_into": s - 1, "tokens": tokens, "ridge": alpha,
                           "error_removed": closed})
        return {"runs": record}

    @torch.inference_mode()
    def fit(self, ctx: HealingContext) -> dict[tuple[int, int], tuple | None]:
        """Per run [s, e): (T, absolute ridge, share of the squared error removed, tokens), or None for a
        run starting at block 0; all runs from one pass over the calibration tokens."""
        handle = ctx.handle
        path = handle.architecture.mlp_out_path
        if path is None:
            raise DrtframeError(f"{self.name} cannot heal {handle.model.config.model_type}: its architecture names no "
                                f"MLP output projection to fold into (Architecture.mlp_out_path)")
        runs = ctx.runs()
        fitted = [(s, e) for s, e in runs if s > 0]
        before = {handle.to_current((s - 1,))[0]: (s, e) for s, e in fitted}  # current position -> run
        after = {handle.to_current((e - 1,))[0]: (s, e) for s, e in fitted}
        sums = {run: _Normal(handle.model.config.hidden_size, handle.device) for run in fitted}
        state: dict = {}

        def keep_mlp(run):
            def hook(module, args, output):
                state[("x", run)] = output
            return hook

        def watch(position, block_input, block_output):
            if position in before:
                state[("h_before", before[position])] = block_output
            if position in after:  # gathered on the inputs' device: a device map may run the blocks elsewhere
                run, rows = after[position], state["mask"]
                x = state.pop(("x", run)).reshape(block_output.shape).to(rows.device)[rows]
                y = block_output.to(rows.device)[rows] - state.pop(("h_before", run)).to(rows.device)[rows] + x
                sums[run].add(x, y)

        hooks = [get_path(handle.layers[handle.to_current((s - 1,))[0]], path).register_forward_hook(keep_mlp((s, e)))
                 for s, e in fitted]
        try:
            with watch_blocks(handle, watch):
                for ids, mask in ctx.batches() if fitted else ():
                    if min(n.tokens for n in sums.values()) >= self.options.tokens:
                        break
                    state["mask"] = mask.bool()
                    handle.model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)
        finally:
            for hook in hooks:
                hook.remove()
        return {(s, e): (*sums[(s, e)].solve(self.options.ridge), sums[(s, e)].tokens) if s > 0 else None
                for s, e in runs}


@hookimpl
def drtframe_register_healers(register):
    register(LinearLS)
