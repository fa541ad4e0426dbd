"""The output head computed by drtframe from the final norm's output, a tile at a time.

A model's head writes every position's logits out whole: for a calibration batch of 8 x 256 tokens
of SmolLM2 that is 2,048 x 49,152 values, which on CPU costs more to write and read back than to
compute. A loss that needs only each row's logsumexp and one target logit can take the product
HEAD_ROWS x HEAD_COLUMNS at a time instead, summing each tile's exponentials while it is in cache
(`benchmarks/head_cost.py`, one 8 x 256 batch: 135 -> 83 ms in bfloat16, 424 -> 312 ms in
float32, within 2.3e-5 per token in float32; in bfloat16 the target's logit is a float32 dot
product, where the whole logits had rounded it to bfloat16, up to 0.12 at these magnitudes).
`next_token_nll` does so wherever `OutputHead` reproduces the model's own logits. Evaluation keeps
the model's logits and lm-eval's `log_softmax` (`drtframe.evaluation.loglikelihood.final_layer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

import torch
import torch.nn.functional as F

from ..models.handle import ModelHandle
from .logits import log_sums, row_logsumexp

HEAD_ROWS = 1024  # rows of a head tile (with HEAD_COLUMNS: 8 MB of bfloat16 logits, the fastest here)
HEAD_COLUMNS = 4096  # vocabulary entries of a head tile
_REPRODUCES: WeakKeyDictionary = WeakKeyDictionary()  # model -> whether OutputHead gives its logits


@dataclass(frozen=True)
class OutputHead:
    """z = W h + b over the vocabulary, soft-capped where the model soft-caps its logits (Gemma)."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    softcap: float | None

    @classmethod
    def of(cls, handle: ModelHandle) -> OutputHead:
        from ..models.placement import head_parameters  # imports accelerate's offload helpers

        model = handle.model
        weight, bias = head_parameters(model, model.get_output_embeddings())
        return cls(weight, bias, getattr(model.config, "final_logit_softcapping", None))

    def cap(self, z: torch.Tensor) -> torch.Tensor:
        """Soft-cap float32 logits `z` in place, as the model does."""
        return z.div_(self.softcap).tanh_().mul_(self.softcap) if self.softcap else z

    def logits(self, normed: torch.Tensor) -> torch.Tensor:
        """The float32 logits of the rows of `normed` (final-norm outputs), whole."""
        return self.cap(F.linear(normed, self.weight, self.bias).float())

    def target_logits(self, normed: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The float32 logit of `targets[i]` at row i of `normed`: one dot product each."""
        z = (normed.float() * self.weight[targets].float()).sum(-1)
        return self.cap(z if self.bias is None else z + self.bias[targets].float())

    def logsumexp(self, normed: torch.Tensor) -> torch.Tensor:
        """The float32 logsumexp of every row's logits, summed a tile at a time (unshifted, as
        `row_logsumexp` does; a row block with a sum outside SAFE_SUMS is redone from whole logits)."""
        sums = torch.zeros(len(normed), dtype=torch.float32, device=normed.device)
        for start in range(0, len(normed), HEAD_ROWS):
            rows, total = normed[start:start + HEAD_ROWS], sums[start:start + HEAD_ROWS]
            for column in range(0, len(self.weight), HEAD_COLUMNS):
                bias = None if self.bias is None else self.bias[column:column + HEAD_COLUMNS]
                tile = F.linear(rows, self.weight[column:column + HEAD_COLUMNS], bias).float()
                total += self.cap(tile).exp_().sum(-1)
        return log_sums(sums, HEAD_ROWS, lambda start: row_logsumexp(self.logits(normed[start:start + HEAD_ROWS])))

    def reproduces(self, normed: torch.Tensor, logits: torch.Tensor) -> bool:
        """Whether these rows of final-norm outputs give the model's own `logits` for them (to the
        rounding of its dtype): false for a head this class does not know (a logit scale, a projection
        after the norm)."""
        if normed.shape[-1] != self.weight.shape[-1] or logits.shape[-1] != len(self.weight):
            return False
        tolerance = 1e-4 if logits.dtype == torch.float32 else 2e-2
        return torch.allclose(self.logits(normed), logits.float(), rtol=tolerance, atol=tolerance)


def next_token_nll(handle: ModelHandle, ids: torch.Tensor) -> torch.Tensor:
    """The NLL of each next token of `ids` under `handle` as it stands (blocks skipped or replaced by
    the caller's hooks): (batch, seq_len - 1), float32.

    A model's first forward projects every position itself, and `OutputHead` is checked against its
    logits at the last of them. Where it reproduces them, the later forwards project one position
    (checked again each time) and `OutputHead`'s tiles do the rest from the final norm's output;
    elsewhere (a logit scale, no known final norm) the model's own logits are read. A forward never
    runs twice: callers may feed recorded inputs one forward at a time.
    """
    model, norm = handle.model, handle.final_norm
    keep = torch.ones_like(ids, dtype=torch.bool)
    keep[:, -1] = False  # rows in the model's order: sample by sample, position by position
    targets = ids[:, 1:].reshape(-1)
    known = _REPRODUCES.get(model)
    if norm is None or known is False:
        logits = model(input_ids=ids, use_cache=False, logits_to_keep=keep).logits
    else:
        mask = keep
        if known:  # the model projects the last row only, for the check
            mask = torch.zeros_like(keep)
            mask[-1, -2] = True
        captured = []
        hook = norm.register_forward_hook(lambda module, args, output: captured.append(output))
        try:
            logits = model(input_ids=ids, use_cache=False, logits_to_keep=mask).logits
        finally:
            hook.remove()
        head = OutputHead.of(handle)
        where = head.weight.device  # a device map may leave the norm's output elsewhere
        normed = captured[-1][keep.to(captured[-1].device)].to(where)
        _REPRODUCES[model] = head.reproduces(normed[-1:], logits[-1:].to(where))
        if _REPRODUCES[model]:
            targets = targets.to(where)
            nll = head.logsumexp(normed) - head.target_logits(normed, targets)
            return nll.view(len(ids), -1).to(ids.device)
        if known:
            raise RuntimeError("drtframe's output head stopped reproducing the model's logits between two forwards")
    targets = targets.to(logits.device)
    nll = row_logsumexp(logits) - logits.gather(-1, targets[:, None]).squeeze(-1).float()
    return nll.view(len(ids), -1).to(ids.device)
