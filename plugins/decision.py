"""Decision pruning (the paper's method): judge a block by the calibration decision left without it.

`decision` scores block j by the Decision Margin at the last layer on calibration MC items with
block j removed (score = -DM, so lower = safer; calibration accuracy breaks ties) and re-scores
after every removal (the iterative schedule). `decision_guided` is the same scorer with the
`decisive_phase` schedule: candidates are only the Decisive Phase of the current model (l*
re-located with `decision_profile` after every removal), and it stops with one line, before
removing a block, when every candidate would leave the model undecided on the calibration items
(final accuracy no longer beats the best constant answer by two standard errors: the Silent-Phase
level, the profile's own rule for 'no transition').

The calibration items come after the evaluation window (`drtframe.calibration_items`); without a
`benchmark` option they are the package's ARC-Easy sample (validation rows 470-569). Removing
block j leaves blocks before it unchanged, so one forward per batch caches every block's input and
the candidate j runs only the blocks after j (`resumed_after`); `cache=false` re-runs the whole
model per candidate instead (same scores; the reference benchmarks/decision_cost.py compares with).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from drtframe import (DecisionProfile, DrtframeError, ItemWindow, MCItem, ModelHandle, Options, PrunePlan, Schedule,
                      Scorer, ScoringContext, block_inputs, decision_profile, encode_pair, hookimpl, layer_scores,
                      model_max_length, resumed_after, scores_in_original_numbering, truncate)


class DecisionOptions(Options):
    benchmark: str | None = None  # None: the packaged ARC-Easy sample
    split: str | None = None
    data_dir: str | None = None
    eval_items: int = 200
    calib_items: int = 100
    format: str | None = None
    cache: bool = True


@dataclass(frozen=True)
class Outcome:
    """The calibration decision at the last layer of the model without one block."""

    position: int
    margin: float
    acc: float
    decides: bool  # final accuracy beats the best constant answer by two standard errors


def _sequences(handle: ModelHandle, items: list[MCItem]) -> list[tuple[int, int, tuple[int, ...], int]]:
    """(item, choice, context + continuation ids, continuation start) for every choice, as lm-eval encodes them."""
    max_length = model_max_length(handle.model)
    seqs = []
    for pos, item in enumerate(items):
        for choice, (context, continuation) in enumerate(zip(item.contexts, item.continuations)):
            pair = truncate(encode_pair(handle.tokenizer, context, continuation), max_length)
            seqs.append((pos, choice, pair.context + pair.continuation, len(pair.context)))
    return sorted(seqs, key=lambda s: (s[3], len(s[2])))


def _continuation_logprobs(handle: ModelHandle, ids, rows, cols, targets) -> torch.Tensor:
    """Log-probability of each target token, predicted at (row, col); logits only where needed."""
    keep, where = torch.unique(cols, return_inverse=True)
    logits = handle.model(input_ids=ids, use_cache=False, logits_to_keep=keep).logits
    return F.log_softmax(logits[rows, where].float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


@torch.inference_mode()
def removal_scores(handle: ModelHandle, items: list[MCItem], positions: list[int], batch_size: int,
                   cache: bool = True) -> dict[int, list[torch.Tensor]]:
    """Per candidate position: per item, the (choices,) summed continuation log-probs without that block.

    Sequences are right-padded, so no mask is needed: a causal model never looks at later tokens.
    """
    seqs = _sequences(handle, items)
    pad = handle.tokenizer.pad_token_id if handle.tokenizer.pad_token_id is not None else handle.tokenizer.eos_token_id
    device = handle.device
    totals = {p: torch.zeros(len(seqs), dtype=torch.float64) for p in positions}
    for first in range(0, len(seqs), batch_size):
        batch = seqs[first:first + batch_size]
        ids = torch.full((len(batch), max(len(s[2]) for s in batch)), pad, dtype=torch.long)
        for row, (_, _, seq, _) in enumerate(batch):
            ids[row, :len(seq)] = torch.tensor(seq)
        ids = ids.to(device)
        predicted = [(row, col, seq[col + 1]) for row, (_, _, seq, start) in enumerate(batch)
                     for col in range(start - 1, len(seq) - 1)]
        rows, cols, targets = torch.tensor(predicted, device=device).T
        owner = first + rows.cpu()
        inputs = block_inputs(handle, ids) if cache else None
        for p in positions:
            without = resumed_after(handle, p, inputs[p]) if cache else handle.temporarily_without((handle.kept[p],))
            with without:
                logprobs = _continuation_logprobs(handle, ids, rows, cols, targets)
            totals[p].index_add_(0, owner, logprobs.double().cpu())
    per_item = [[0.0] * item.num_choices for item in items]
    result = {}
    for p in positions:
        for (pos, choice, _, _), total in zip(seqs, totals[p].tolist()):
            per_item[pos][choice] = total
        result[p] = [torch.tensor(row) for row in per_item]
    return result


def ordered_scores(outcomes: list[Outcome]) -> list[float]:
    """-DM per outcome, nudged by ulps where margins tie exactly so that higher accuracy sorts first."""
    scores = [-o.margin for o in outcomes]
    previous = None
    for i in sorted(range(len(outcomes)), key=lambda i: (-outcomes[i].margin, -outcomes[i].acc)):
        if previous is not None and scores[i] <= previous:
            scores[i] = math.nextafter(previous, math.inf)
        previous = scores[i]
    return scores


class Decision(Scorer):
    """Decision pruning: -(calibration Decision Margin at the last layer) with the block removed; iterative."""

    name = "decision"
    default_schedule = "iterative"
    Options = DecisionOptions

    def __init__(self, options: Options | None = None) -> None:
        super().__init__(options)
        self._loaded: tuple[list[MCItem], dict] | None = None
        self._profiles: dict[tuple[int, ...], DecisionProfile] = {}

    @property
    def window(self) -> ItemWindow:
        o = self.options
        if o.benchmark is None:
            if o.split or o.data_dir:
                raise DrtframeError(f"{self.name}: split and data_dir need a benchmark option (-o benchmark=NAME)")
            return replace(ItemWindow.sample(o.calib_items), format=o.format)
        return ItemWindow(o.benchmark, o.split, Path(o.data_dir) if o.data_dir else None, o.eval_items,
                          o.calib_items, o.format)

    def items(self) -> list[MCItem]:
        """The calibration items (loaded once)."""
        if self._loaded is None:
            from drtframe.plugins import load_registry

            self._loaded = self.window.load(load_registry())
        return self._loaded[0]

    def item_record(self) -> dict:
        """Which items guided the pruning (benchmark, split, format, index range), for every output."""
        self.items()
        return self._loaded[1]

    def profile(self, ctx: ScoringContext) -> DecisionProfile:
        """The calibration decision profile of the current model, every layer through the logit lens (kept per model)."""
        kept = ctx.handle.kept
        if kept not in self._profiles:
            items = self.items()
            self._profiles[kept] = decision_profile(layer_scores(ctx.handle, items), [item.gold for item in items])
        return self._profiles[kept]

    def outcomes(self, ctx: ScoringContext, positions: list[int] | None = None) -> list[Outcome]:
        """The last-layer calibration decision without each block at `positions` (default: all)."""
        items = self.items()
        gold = [item.gold for item in items]
        positions = list(range(ctx.handle.num_layers)) if positions is None else positions
        scores = removal_scores(ctx.handle, items, positions, ctx.batch_size, self.options.cache)
        result = []
        for p in positions:
            final = decision_profile([s.unsqueeze(1) for s in scores[p]], gold)
            result.append(Outcome(p, final.decision_margin[-1], final.acc[-1], final.transition.layer is not None))
        return result

    def score(self, ctx: ScoringContext) -> list[float]:
        return ordered_scores(self.outcomes(ctx))


class DecisionGuided(Decision):
    """Decision pruning restricted to the Decisive Phase (l* re-located each step); stops before collapse."""

    name = "decision_guided"
    default_schedule = "decisive_phase"


class DecisionStop(DrtframeError):
    """Decision-guided pruning cannot remove another block without collapsing the calibration decision."""

    def __init__(self, message: str, order: tuple[int, ...]) -> None:
        super().__init__(message)
        self.order = order


def _layers(layers: list[int]) -> str:
    return f"layers {layers[0]}-{layers[-1]}" if len(layers) > 1 else f"layer {layers[0]}"


class DecisivePhase(Schedule):
    """Iterative removal among the current Decisive Phase only; stops when every candidate collapses the decision."""

    name = "decisive_phase"

    def plan(self, scorer: Scorer, ctx: ScoringContext, k: int, progress=None) -> PrunePlan:
        if not isinstance(scorer, Decision):
            raise DrtframeError(f"schedule {self.name} needs a decision scorer (decision, decision_guided), "
                                f"not {scorer.name}")
        order: list[int] = []
        first = None
        for _ in range(k):
            with ctx.handle.temporarily_without(tuple(order)) as pruned:
                step_ctx = replace(ctx, handle=pruned)
                decisive = scorer.profile(step_ctx).decisive_phase
                outcomes = scorer.outcomes(step_ctx, decisive) if decisive else []
                if first is None:
                    by_position = dict(zip(decisive, ordered_scores(outcomes)))
                    first = scores_in_original_numbering(step_ctx, [by_position.get(p) for p in range(pruned.num_layers)])
                safe = [o for o in outcomes if o.decides]
                if not safe:
                    raise DecisionStop(self._stop_message(scorer, pruned, decisive, order, k), tuple(order))
                best = min(safe, key=lambda o: (-o.margin, -o.acc, o.position))
                order.append(pruned.kept[best.position])
            if progress:
                progress(1)
        return PrunePlan(scorer.name, tuple(sorted(order)), tuple(order), first)

    @staticmethod
    def _stop_message(scorer: Decision, pruned: ModelHandle, decisive: list[int], order: list[int], k: int) -> str:
        r = scorer.item_record()
        where = f"{r['benchmark']} {r['split']} items {r['first_item']}-{r['last_item']}"
        done = f"stopped after {len(order)} of {k} removals" + (f" (removed {', '.join(map(str, order))})" if order else "")
        if not decisive:
            return f"{scorer.name} {done}: the model shows no decision transition on {where}, so it has no Decisive Phase"
        phase = _layers([pruned.kept[p] for p in decisive])
        return (f"{scorer.name} {done}: removing any Decisive-Phase block ({phase}) drops accuracy on "
                f"{where} to the Silent-Phase level")


@hookimpl
def drtframe_register_scorers(register):
    register(Decision)
    register(DecisionGuided)


@hookimpl
def drtframe_register_schedules(register):
    register(DecisivePhase)
