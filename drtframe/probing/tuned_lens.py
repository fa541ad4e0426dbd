"""The tuned lens: one affine translator per block, fitted so that each block's readout matches the model's own.

The logit lens reads block l's output h_l through the final norm and head as if it were the last
block's output. Early and middle blocks of small models write in other directions, so the lens
misreads them (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned
Lens"). The tuned lens reads T_l(h_l) = h_l + h_l A_l + b_l instead, with A_l, b_l fitted on
calibration text to minimise KL(model's next-token distribution || the readout's) at every position.

The `tuned-lens` package (0.2.0) was not used: its training script imports `torchdata.dataloader2`,
which torchdata removed in 0.10, and it pulls in wandb and plotly. drtframe fits the translators in
two steps: a least-squares map from h_l to the last block's output (closed form, seconds), kept only
for layers where it lowers the held-out KL, then `STEPS` Adam steps on the KL itself, the vocabulary
product in bfloat16, kept only for layers where they lower it further. On SmolLM2 the least squares
alone took the held-out KL of blocks 0-22 from 13-19 nats (logit lens) to 1.2-3.2, and 30 Adam steps
took block 0 on to 2.7. The last block needs no translator: its read is the model's own output.

A fitted lens is cached per model fingerprint (every weight byte) and training settings
(`settings_key`) under `$DRTFRAME_CACHE/lenses`, with its held-out KL per layer under both lenses
(bfloat16 vocabulary products). Translators are indexed
by the original block numbering: a pruned model reads each kept block through the translator fitted
for it on the dense model, unchanged. They are not refitted after a removal, so the readout of a
block after a removed one is approximate, as the logit lens's is.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import DrtframeError
from ..forward.hidden_states import run_blocks, watch_blocks
from ..forward.output_head import OutputHead
from ..models.handle import ModelHandle
from ..models.placement import head_parameters
from ..scoring.calibration import WIKITEXT2_SAMPLE, CalibrationSpec, calibration_tokens

READOUTS = ("logit", "tuned")
TRAINING_TEXT = CalibrationSpec(WIKITEXT2_SAMPLE, 40, 256)  # the packaged text: works offline
HELD_OUT = 4  # of those sequences, the last ones measure the fit (never trained on)
STEPS = 20  # about 7 s each on SmolLM2 here; the least-squares start does most of the work
TOKENS_PER_STEP = 256
LEARNING_RATE = 5e-4
RIDGE = 1e-2  # least squares: regulariser, relative to the mean variance of h_l
SEED = 0
VERSION = 1  # bump when the fit changes, so cached lenses are refitted
TRAIN_DTYPE = torch.bfloat16  # the vocabulary product while training and measuring the fit
# Everything besides the model that a fitted lens depends on: part of its cache key.
SETTINGS = {"version": VERSION, "text": TRAINING_TEXT.as_dict(), "held_out": HELD_OUT, "steps": STEPS,
            "tokens_per_step": TOKENS_PER_STEP, "learning_rate": LEARNING_RATE, "ridge": RIDGE, "seed": SEED}


def settings_key() -> str:
    """A short digest of SETTINGS (the fit's recipe), in cache file names and compare's store keys."""
    digest = hashlib.blake2b(json.dumps(SETTINGS, sort_keys=True).encode(), digest_size=6)
    return digest.hexdigest()


@dataclass(frozen=True)
class TunedLens:
    """Translators of blocks 0..L-2 (original numbering) and how well they fit (held-out KL per block, nats)."""

    weight: torch.Tensor  # (L - 1, H, H): T_l(h) = h + h @ weight[l] + bias[l]
    bias: torch.Tensor  # (L - 1, H)
    report: dict = field(default_factory=dict)

    def translate(self, hidden: torch.Tensor, layers: tuple[int, ...]) -> torch.Tensor:
        """(len(layers), N, H) block outputs, each through its block's translator (float32 inside)."""
        index = torch.tensor(layers, device=self.weight.device)
        h = hidden.float()
        out = torch.baddbmm(h + self.bias[index].unsqueeze(1), h, self.weight[index])
        return out.to(hidden.dtype)


_ATTACHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its dense model's lens


def tuned_lens_for(handle: ModelHandle, status: Callable[[str], None] = lambda message: None) -> TunedLens:
    """The tuned lens of `handle`'s dense model: fitted once per model and cached on disk.

    The lens is fitted on the dense model; a model with blocks removed in place reuses its dense
    model's lens, so ask for it before removing any (every command does, when the tuned readout is chosen).
    """
    known = _ATTACHED.get(handle.model)
    if known is not None:
        return known
    if handle.removed:
        raise DrtframeError("the tuned lens is fitted on the dense model: this model already has blocks "
                            f"{', '.join(map(str, handle.removed))} removed; load the original model and remove them "
                            "with drtframe instead")
    from ..models.aliases import cache_root
    from ..models.fingerprint import model_fingerprint

    path = cache_root() / "lenses" / f"{model_fingerprint(handle)}-{settings_key()}.safetensors"
    if path.exists():
        lens = _load(path)
    else:
        status(f"fitting a tuned lens on {handle.num_layers - 1} blocks (once per model; cached in {path.parent})")
        lens = fit_tuned_lens(handle, calibration_tokens(TRAINING_TEXT, handle.tokenizer), status=status)
        _save(path, lens)
    device = head_parameters(handle.model, handle.model.get_output_embeddings())[0].device
    lens = TunedLens(lens.weight.to(device), lens.bias.to(device), lens.report)  # where the head reads it
    _ATTACHED[handle.model] = lens
    return lens


def fit_tuned_lens(handle: ModelHandle, tokens: torch.Tensor, steps: int = STEPS, held_out: int = HELD_OUT,
                   status: Callable[[str], None] = lambda message: None) -> TunedLens:
    """Fit translators for every block but the last on `tokens` (sequences, length); the last `held_out`
    sequences measure the fit."""
    if handle.removed:
        raise DrtframeError("a tuned lens is fitted on the dense model, not one with blocks removed")
    if len(tokens) <= held_out:
        raise DrtframeError(f"fitting a tuned lens needs more than {held_out} calibration sequences")
    started = time.perf_counter()
    hidden = _block_outputs(handle, tokens)  # (L, sequences * (length - 1), H), float32
    per_sequence = tokens.shape[1] - 1
    train, test = hidden[:, :-held_out * per_sequence], hidden[:, -held_out * per_sequence:]
    read = _Reader(handle)
    weight, bias = (t.to(read.head_weight.device) for t in _least_squares(train[:-1], train[-1]))
    identity = (torch.zeros_like(weight), torch.zeros_like(bias))
    logit_kl = read.kl(test, *identity)
    fitted_kl = read.kl(test, weight, bias)
    worse = fitted_kl > logit_kl  # least squares can misfit a layer: start that one from the identity
    weight[worse], bias[worse] = 0, 0
    start, start_kl = (weight.clone(), bias.clone()), torch.minimum(fitted_kl, logit_kl)
    weight, bias = weight.requires_grad_(), bias.requires_grad_()
    optimiser = torch.optim.Adam([weight, bias], lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(SEED)
    for step in range(steps):
        rows = torch.randperm(train.shape[1], generator=generator)[:TOKENS_PER_STEP]
        optimiser.zero_grad()
        read.kl(train[:, rows], weight, bias, train=True)
        optimiser.step()
        status(f"fitting the tuned lens: step {step + 1}/{steps}")
    weight, bias = weight.detach(), bias.detach()
    tuned_kl = read.kl(test, weight, bias)
    undone = tuned_kl > start_kl  # a layer the steps made worse keeps its starting translator
    weight[undone], bias[undone] = start[0][undone], start[1][undone]
    report = {"logit_kl": logit_kl.tolist(), "tuned_kl": torch.minimum(tuned_kl, start_kl).tolist(),
              "least_squares_kept": (~worse).tolist(), "steps_undone": undone.tolist(), "steps": steps,
              "tokens_per_step": TOKENS_PER_STEP, "train_tokens": train.shape[1], "held_out_tokens": test.shape[1],
              "text": TRAINING_TEXT.source, "seconds": round(time.perf_counter() - started, 1)}
    return TunedLens(weight, bias, report)


def _block_outputs(handle: ModelHandle, tokens: torch.Tensor, batch: int = 4) -> torch.Tensor:
    """Every block's output at every position but the first (a chunk's first token carries the
    attention sink's outsized activations, which no MC read position has), float32."""
    outputs: list[list[torch.Tensor]] = [[] for _ in range(handle.num_layers)]

    def keep(position, block_input, block_output):
        outputs[position].append(block_output[:, 1:].float().reshape(-1, block_output.shape[-1]).cpu())

    with torch.no_grad(), watch_blocks(handle, keep):
        for start in range(0, len(tokens), batch):
            run_blocks(handle, tokens[start:start + batch].to(handle.device))
    return torch.stack([torch.cat(parts) for parts in outputs])


def _least_squares(inputs: torch.Tensor, last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per layer, the ridge least-squares A, b with h + h A + b closest to the last block's output."""
    weights, biases = [], []
    for h in inputs:
        x, r = h.double(), (last - h).double()
        mean_x, mean_r = x.mean(0), r.mean(0)
        xc = x - mean_x
        gram = xc.T @ xc
        gram.diagonal().add_(RIDGE * gram.diagonal().mean())
        a = torch.linalg.solve(gram, xc.T @ (r - mean_r))
        weights.append(a.float())
        biases.append((mean_r - mean_x @ a).float())
    return torch.stack(weights), torch.stack(biases)


class _Reader:
    """KL(model's distribution || translated readout) per block, through the model's final norm and head."""

    def __init__(self, handle: ModelHandle) -> None:
        model = handle.model
        self.norm = handle.final_norm
        head = OutputHead.of(handle)  # soft-capped below out of place: the fit needs gradients through it
        self.head_weight, self.head_bias, self.softcap = head.weight, head.bias, head.softcap
        self.cast = {torch.float32: self.head_weight.float(), TRAIN_DTYPE: self.head_weight.to(TRAIN_DTYPE)}
        self.frozen = [p for p in model.parameters() if p.requires_grad]

    def logprobs(self, hidden: torch.Tensor, dtype: torch.dtype = TRAIN_DTYPE) -> torch.Tensor:
        bias = None if self.head_bias is None else self.head_bias.to(dtype)
        logits = F.linear(self.norm(hidden).to(dtype), self.cast[dtype], bias).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return torch.log_softmax(logits, -1)

    def kl(self, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, train: bool = False,
           chunk: int = 512) -> torch.Tensor:
        """Mean KL per block over `hidden`'s positions ((L, N, H), the last row the model's final block);
        with `train`, its gradient is accumulated into `weight` and `bias`."""
        layers, total = weight.shape[0], torch.zeros(weight.shape[0])
        with self._frozen(), torch.set_grad_enabled(train):
            for start in range(0, hidden.shape[1], chunk):
                part = hidden[:, start:start + chunk].to(self.head_weight.device)
                with torch.no_grad():
                    target = self.logprobs(part[-1], torch.float32)
                    p = target.exp()
                for layer in range(layers):
                    h = part[layer]
                    read = self.logprobs(h + h @ weight[layer] + bias[layer])
                    kl = (p * (target - read)).sum(-1).sum() / hidden.shape[1]
                    if train:
                        kl.backward()
                    total[layer] += kl.detach().cpu()
        return total

    @contextmanager
    def _frozen(self):
        """The model's parameters out of autograd while translators train."""
        for p in self.frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in self.frozen:
                p.requires_grad_(True)


def _save(path, lens: TunedLens) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")  # Ray workers may fit the same lens at once
    save_file({"weight": lens.weight.contiguous(), "bias": lens.bias.contiguous()}, str(partial),
              metadata={"report": json.dumps(lens.report)})
    partial.replace(path)


def _load(path) -> TunedLens:
    from safetensors import safe_open

    with safe_open(str(path), "pt", device="cpu") as f:
        return TunedLens(f.get_tensor("weight"), f.get_tensor("bias"), json.loads(f.metadata()["report"]))
