"""Scorers that judge block j by a loss of the model with block j skipped (SLEB and its kin).

Skipping block j leaves blocks 0..j-1 untouched, so their work is shared: one forward per batch
caches the input of every block, and the candidate j then runs only blocks j+1.. from the cached
input of j. Per round that is at most L + L(L-1)/2 + 1 block forwards instead of L(L-1) for
re-running the whole model once per candidate; the iterative schedule pays it once per removal. The
caching pass stops at the deepest candidate still running (a float32 re-check of blocks 13 and 14
runs 15 blocks, not 30).

Candidates are ranked cheaply, then the leaders measured exactly. A float32 model ranks them in a
bfloat16 copy (about twice as fast on CPU), then measures in float32 every candidate whose bfloat16
loss is within `recheck_within` of the best float32 loss so far
(`drtframe.scoring.scorer.rechecked`): the block a schedule removes, and its score, are float32's;
the other scores are bfloat16's. A ranking races the candidates (`still_racing`): after each batch,
a candidate whose mean paired loss difference from the leader exceeds `race_within` by RACE_SIGMAS
standard errors runs no more batches, and its score is its mean over the batches it ran; the far-off
candidates (removing the first or last blocks costs nats, not hundredths) stop after one batch. The
two margins guard against different errors: `recheck_within` (0.005) against bfloat16 rounding,
which moved SmolLM2's losses by at most 0.0013; `race_within` (0.02) against the noise of means over
the first batches, which at 0.005 raced out the block float32 removes next. Each ranking builds on
the one before: it keeps the input its replay of candidate j gave each of the `KEPT_BLOCKS` best-
ranked blocks, and once block b of those is removed, candidate j < b resumes from its input to b
instead of running the blocks between again (`Carried`). The float32 re-checks keep the block inputs
they record in the same way: after block b goes, those of the blocks before b still hold and b's
enters the block after it (`carried_inputs`), so the next round's re-checks record from there on
only. Both carry over only to the same calibration batches, through the same weights
(`Carried.serves`). A model no bfloat16 copy is made of (not float32, or spread by a device map) is
ranked as it is, and its ranking is final. Option `race=false` runs every candidate on every batch,
`resume=false` keeps nothing between rounds, `bfloat16=false` measures every candidate in the
model's precision on all the data with none of these shortcuts; `cache=false` re-runs the whole
model per candidate instead (same scores as `bfloat16=false`: the reference that checks the
shortcuts). """

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import ClassVar
from weakref import WeakKeyDictionary

import torch

from ..forward.hidden_states import carried_inputs, completed_inputs, hidden_in, hooked, resumable, resumed_after
from ..models.handle import ModelHandle
from ..models.weights import Weights, same_weights, weights_of
from ..plugin_system.options import Options
from .scorer import Scorer, ScoringContext, rechecked

KEPT_BLOCKS = 6  # best-ranked blocks whose replay inputs a ranking keeps for the next round
RACE_SIGMAS = 4.0  # standard errors beyond `race_within` that take a candidate out of a ranking's race
States = list[dict[tuple[int, int], torch.Tensor]]  # per batch: (candidate, block), original indices -> input
Inputs = list[dict[int, torch.Tensor]]  # per batch: block, original index -> its input in the current model


class SkipOptions(Options):
    cache: bool = True  # false: the whole model per candidate (the reference)
    bfloat16: bool = True  # rank in a bfloat16 copy of a float32 model, re-check the leaders in float32
    recheck_within: float = 0.005  # loss: how close to the best a bfloat16 candidate is re-checked
    race_within: float = 0.02  # loss: how far behind the leader (beyond RACE_SIGMAS errors) a candidate leaves
    resume: bool = True  # keep replay inputs at the best-ranked blocks for the next round
    race: bool = True  # a ranking stops running candidates that are clearly not near the best


@dataclass(frozen=True)
class Carried:
    """Replay inputs a ranking of the model with blocks `kept` left for the next round, and the float32
    block inputs its re-checks recorded (the next round's re-checks start from those still valid)."""

    kept: tuple[int, ...]
    states: States
    inputs: Inputs
    calibration: torch.Tensor
    batch_size: int
    weights: Weights

    def serves(self, ctx: ScoringContext) -> bool:
        """Whether `ctx` reads the calibration batches these inputs were recorded on, through the same
        weights (none changed since, only blocks removed)."""
        return (ctx.batch_size == self.batch_size and torch.equal(ctx.calibration, self.calibration)
                and same_weights(ctx.handle.model, self.weights))


class SkipScorer(Scorer):
    """Base of scorers whose score of block j is a calibration loss with block j skipped.

    Subclasses implement `loss` (or `skipped_loss`); `score` runs the candidates (see the module for
    the shortcuts).
    """

    default_schedule: ClassVar[str] = "iterative"
    needs_calibration: ClassVar[bool] = True
    Options = SkipOptions

    def __init__(self, options: SkipOptions | None = None) -> None:
        super().__init__(options)
        self._carried: WeakKeyDictionary = WeakKeyDictionary()  # model -> Carried of its latest ranking

    def loss(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """One loss per sample of the batch `ids`, shape (batch,), from the skipped model's logits."""
        raise NotImplementedError(f"{type(self).__name__} implements neither loss() nor skipped_loss()")

    def skipped_loss(self, handle: ModelHandle, ids: torch.Tensor) -> torch.Tensor:
        """One loss per sample of the batch `ids` under `handle` as it stands (the candidate already
        skipped): by default `loss` of its logits. A scorer that needs less than the logits overrides
        this (perplexity reads `drtframe.next_token_nll`, which never writes them out whole)."""
        return self.loss(handle.model(input_ids=ids, use_cache=False).logits, ids)

    def score(self, ctx: ScoringContext) -> list[float]:
        positions = list(range(ctx.handle.num_layers))
        if not (self.options.cache and self.options.bfloat16):
            losses = self.losses(ctx, positions)
            return [losses[p] for p in positions]
        copy = ctx.handle.bfloat16_copy()  # None: the model is ranked as it is, and its ranking is final
        final = copy is None
        carried = self._carried.pop(ctx.handle.model, None)
        carried = carried if carried is not None and carried.serves(ctx) else None
        resume = resumable(carried.states, carried.kept, ctx.handle.kept) if carried is not None else None
        inputs: Inputs = [] if carried is None else [carried_inputs(carried.kept, batch, ctx.handle.kept)
                                                     for batch in carried.inputs]
        states: States | None = [] if self.options.resume else None
        ranked = self.losses(ctx if copy is None else replace(ctx, handle=copy), positions, resume, states,
                             within=self.options.race_within if self.options.race else None)
        del copy, carried
        exact = {} if final else rechecked(ranked, lambda close: self.losses(ctx, close, inputs=inputs), float,
                                           self.options.recheck_within)
        if states is not None:
            best = {ctx.handle.kept[p] for p in sorted(positions, key=ranked.get)[:KEPT_BLOCKS]}
            self._carried[ctx.handle.model] = Carried(ctx.handle.kept, [
                {key: state for key, state in batch.items() if key[1] in best} for batch in states], inputs,
                ctx.calibration, ctx.batch_size, weights_of(ctx.handle.model))
        return [exact.get(p, ranked[p]) for p in positions]

    @torch.inference_mode()
    def losses(self, ctx: ScoringContext, positions: list[int],
               resume: tuple[int, dict[int, list[torch.Tensor]]] | None = None,
               states: States | None = None, within: float | None = None,
               inputs: Inputs | None = None) -> dict[int, float]:
        """The mean calibration loss of `ctx.handle` without the block at each of `positions`; candidates
        `resume` covers start from their saved inputs; `states` (when given) gets the inputs every
        replay gave the blocks it ran; with `within`, the candidates race (`still_racing`); `inputs`
        (when given) holds block inputs already recorded, and gets those recorded here."""
        handle = ctx.handle
        per_sample: dict[int, list[torch.Tensor]] = {p: [] for p in positions}
        running = list(positions)
        for batch, ids in enumerate(ctx.batches()):
            cached = None
            if self.options.cache:
                if inputs is not None and batch == len(inputs):
                    inputs.append({})
                known = inputs[batch] if inputs is not None else {}
                cached = completed_inputs(handle, ids, known, max(running))
                known.update(zip(handle.kept, cached))
            if states is not None:
                states.append({})
            for j in running:
                start, hidden = j, cached[j] if cached is not None else None
                if resume is not None and handle.kept[j] in resume[1]:
                    start, hidden = resume[0] - 1, resume[1][handle.kept[j]][batch]
                skipped = (resumed_after(handle, start, hidden) if cached is not None
                           else handle.temporarily_without((handle.kept[j],)))
                saving = _saving_inputs(handle, start, handle.kept[j], states[-1]) if states is not None else nullcontext()
                with skipped, saving:
                    per_sample[j].append(self.skipped_loss(handle, ids).double().cpu())
            if within is not None:
                running = still_racing({j: torch.cat(per_sample[j]) for j in running}, within)
        return {p: torch.cat(losses).mean().item() for p, losses in per_sample.items()}


def still_racing(losses: dict[int, torch.Tensor], within: float, sigmas: float = RACE_SIGMAS) -> list[int]:
    """The candidates that may still end within `within` of the best, from per-sample losses so far.

    Differences are paired by sample (a hard text chunk is hard for every candidate), so they are far
    less noisy than the losses: a candidate leaves when its mean difference from the leader (lowest
    mean) exceeds `within` by more than `sigmas` standard errors. Nobody leaves before two samples.
    """
    leader = losses[min(losses, key=lambda p: losses[p].mean())]
    if len(leader) < 2:
        return list(losses)
    stay = []
    for p, values in losses.items():
        difference = values - leader
        if difference.mean() - sigmas * difference.std() / len(leader) ** 0.5 <= within:
            stay.append(p)
    return stay


def _saving_inputs(handle: ModelHandle, start: int, candidate: int, saved: dict[tuple[int, int], torch.Tensor]):
    """Inside, the blocks after position `start` save their input under (candidate, block)."""
    blocks = list(zip(handle.kept, handle.layers))[start + 1:]

    def register(position, item):
        block, layer = item

        def hook(module, args, kwargs):
            saved[candidate, block] = hidden_in(args, kwargs)
        return layer.register_forward_pre_hook(hook, with_kwargs=True)

    return hooked(blocks, register)
