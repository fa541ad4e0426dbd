"""Decision pruning (the paper's method): judge a block by the calibration decision left without it.

`decision` scores block j by the Decision Margin at the last layer on calibration MC items with
block j removed (score = -DM, so lower = safer; calibration accuracy breaks ties) and re-scores
after every removal (the iterative schedule). `decision_guided` is the same scorer with the
`decisive_phase` schedule: candidates are only the Decisive Phase of the current model (l*
re-located with `decision_profile` after every removal), and it stops with one line, before
removing a block, when every candidate would leave the model undecided on the calibration items
(final accuracy no longer beats the best constant answer by two standard errors: the Silent-Phase
level, the profile's own rule for 'no transition'). The schedule finds the phases through the logit
lens, or with its option `readout=tuned` through the tuned lens (`drtframe.probing.tuned_lens`),
which reads early and middle blocks far better; `decision` reads only the last layer and has no
readout. The profile is read from the round's recording of every block's input (`read_recorded`):
of a forward of its own, only the last block (with the embeddings and the head) runs.

The calibration items come after the evaluation window (`drtframe.scoring.calibration_items`); without a
`benchmark` option they are the package's ARC-Easy sample (validation rows 470-569). Candidates
are scored by the evaluator's own engine (batches cut by its token budget, not by --batch-size):
removing block j leaves blocks before it unchanged, so each round runs the model once over the items
recording every block's input (`drtframe.evaluation.stacked_replay`), and candidate j replays those
forwards through the blocks after j only, runs of adjacent candidates stacked into one replay. A
float32 model ranks the candidates in a bfloat16 copy fed the float32 recording, then re-checks in
float32 every candidate whose bfloat16 margin is within `recheck_within` (widened to twice the
largest bfloat16 error seen in the round) of the best float32 margin so far, until none is left: the
chosen block and its score are float32's, the other scores bfloat16's. Each round builds on the one
before (`Round`): after removing block b, the recording re-runs from b only, and every candidate
before b resumes from the input its own replay gave b, which the blocks in between would compute
again (up to the rounding of differently stacked matrices); option `resume=false` keeps no replay
inputs between rounds. `cache=false` re-runs the whole float32 model per candidate instead (the
reference the fast path is tested against; benchmarks/decision_cost.py times both).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal
from weakref import WeakKeyDictionary

import torch

from drtframe import (DecisionProfile, DrtframeError, ItemOptions, MCItem, ModelHandle, Options, PrunePlan, Recording,
                      ReplayStates, Resume, Schedule, ScheduleStopped, Scorer, ScoringContext, choice_scores_without,
                      decision_profile, hookimpl, lens_profile, profile_readout, read_recorded, rechecked, record,
                      recorded_without, removed_block, replay, resumable, same_weights, scores_in_original_numbering,
                      weights_of)


class DecisionOptions(ItemOptions):
    cache: bool = True  # false: the whole float32 model per candidate (the reference)
    bfloat16: bool = True  # rank in a bfloat16 copy of a float32 model, re-check the leaders in float32
    recheck_within: float = 0.02  # Decision Margin: how close to the best a bfloat16 candidate is re-checked
    resume: bool = True  # keep the ranking replays' block inputs so the next round resumes from them


KEPT_STATES = 6  # blocks, among the best ranked of a round, whose replay inputs the next rounds may resume from


@dataclass(frozen=True)
class Outcome:
    """The calibration decision at the last layer of the model without one block."""

    position: int
    margin: float
    acc: float
    decides: bool  # final accuracy beats the best constant answer by two standard errors
    exact: bool = True  # measured in the model's own dtype (False: in the bfloat16 ranking copy)


def ordered_scores(outcomes: list[Outcome]) -> list[float]:
    """-DM per outcome, nudged by ulps where margins tie exactly so that higher accuracy sorts first."""
    scores = [-o.margin for o in outcomes]
    previous = None
    for i in sorted(range(len(outcomes)), key=lambda i: (-outcomes[i].margin, -outcomes[i].acc)):
        if previous is not None and scores[i] <= previous:
            scores[i] = math.nextafter(previous, math.inf)
        previous = scores[i]
    return scores


@dataclass
class Round:
    """What one round of iterative decision pruning keeps for the next: the model's recording (its own
    dtype) and the block inputs its ranking replays saw at the blocks ranked best (the next removal is
    one of them). After the next removal (block `removed`), the recording is re-run from that block
    only, and candidates before it resume from their replay's input there: the blocks in between would
    compute it again."""

    kept: tuple[int, ...]
    recording: Recording
    weights: dict  # `weights_of` the model recorded: once a weight changed, nothing here holds
    states: ReplayStates = field(default_factory=list)
    resume: tuple[int, dict[int, list[list[torch.Tensor]]]] | None = None  # see `resumable`

    def after_removal(self, handle: ModelHandle) -> Round:
        """The round of `handle`, this round's model less one block."""
        removed = removed_block(self.kept, handle.kept)
        carried = [{key: value for key, value in batch.items() if key[1] < removed} for batch in self.states]
        return Round(handle.kept, recorded_without(handle, self.recording, self.kept.index(removed)),
                     weights_of(handle.model), carried, resumable(self.states, self.kept, handle.kept))

    def ranked(self, handle: ModelHandle, positions: list[int],
               keep: Callable[[dict[int, list[torch.Tensor]]], set[int]] | None) -> dict[int, list[torch.Tensor]]:
        """Choice scores without each block at `positions`, replayed in `handle` (this model or a copy in
        another dtype), resuming where the previous round allows; with `keep` (the positions among
        those scored so far whose replay inputs may be wanted), keeps the block inputs the replays saw
        there (`replay`'s `keep`)."""
        resume = None
        if self.resume is not None:
            at, saved = self.resume
            inputs = {p: saved[self.kept[p]] for p in positions if self.kept[p] in saved}
            resume = Resume(at, inputs) if inputs else None
        states: ReplayStates | None = [] if keep else None
        scores = replay(handle, self.recording, positions, resume=resume, states=states, keep=keep)
        carried = self.states or [{}] * len(self.recording.batches)
        self.states = [{**old, **new} for old, new in zip(carried, states)] if keep else []
        self.resume = None
        return scores

    def keep_states_at(self, blocks: set[int]) -> None:
        """Keep only the states at `blocks` (original indices)."""
        self.states = [{key: value for key, value in batch.items() if key[1] in blocks} for batch in self.states]


class Decision(Scorer):
    """Decision pruning: -(calibration Decision Margin at the last layer) with the block removed; iterative."""

    name = "decision"
    default_schedule = "iterative"
    Options = DecisionOptions

    def __init__(self, options: DecisionOptions | None = None) -> None:
        super().__init__(options)
        self.window = self.options.window(self.name)  # bad options fail here, before a model is loaded
        self._loaded: tuple[list[MCItem], dict] | None = None
        self._profiles: WeakKeyDictionary = WeakKeyDictionary()  # model -> {(kept, readout): (weights, profile)}
        self._rounds: WeakKeyDictionary = WeakKeyDictionary()  # model -> its latest Round

    def items(self) -> list[MCItem]:
        """The calibration items (loaded once)."""
        if self._loaded is None:
            from drtframe import load_registry

            self._loaded = self.window.load(load_registry())
        return self._loaded[0]

    def item_record(self) -> dict:
        """Which items guided the pruning (benchmark, split, format, index range), for every output."""
        self.items()
        return self._loaded[1]

    def profile(self, ctx: ScoringContext, readout: str = "logit") -> DecisionProfile:
        """The calibration decision profile of the current model, every layer through the `readout` lens
        (kept per model, blocks kept and readout, while the weights stay). With `cache`, it is read from
        the round's recording, which the round's candidates are scored from: that holds every block's
        input, so of a forward of its own only the last block runs again, for the model's output."""
        model, key = ctx.handle.model, (ctx.handle.kept, readout)
        known = self._profiles.setdefault(model, {}).get(key)
        if known is None or not same_weights(model, known[0]):
            items = self.items()
            if self.options.cache:
                scores = read_recorded(ctx.handle, self._round(ctx.handle).recording,
                                       profile_readout(ctx.handle, items, readout))
                profile = decision_profile(scores, [item.gold for item in items])
            else:
                profile = lens_profile(ctx.handle, items, readout)
            self._profiles[model][key] = known = (weights_of(model), profile)
        return known[1]

    def outcomes(self, ctx: ScoringContext, positions: list[int] | None = None, exact: bool = False) -> list[Outcome]:
        """The last-layer calibration decision without each block at `positions` (default: all); with
        `exact`, none of them from the bfloat16 ranking copy."""
        positions = list(range(ctx.handle.num_layers)) if positions is None else positions
        if not self.options.cache:
            return self._judged(choice_scores_without(ctx.handle, self.items(), positions, cache=False), positions)
        current = self._round(ctx.handle)
        ranking = ctx.handle.bfloat16_copy() if self.options.bfloat16 and not exact else None
        if ranking is None and exact:
            return self._judged(replay(ctx.handle, current.recording, positions), positions)

        judged: dict[int, Outcome] = {}

        def best(scored: dict[int, list[torch.Tensor]]) -> set[int]:  # the positions ranked best so far
            judged.update((o.position, o) for o in self._judged(scored, sorted(set(scored) - set(judged))))
            ranked_so_far = sorted((judged[p] for p in sorted(scored)), key=lambda o: -o.margin)
            return {o.position for o in ranked_so_far[:KEPT_STATES]}

        scores = current.ranked(ranking or ctx.handle, positions, best if self.options.resume else None)
        current.keep_states_at({ctx.handle.kept[p] for p in best(scores)})  # with the states carried over
        ranked = [judged[p] for p in positions]
        if ranking is None:
            return ranked
        del ranking
        ranked = {o.position: replace(o, exact=False) for o in ranked}

        def measured(close: list[int]) -> dict[int, Outcome]:
            return {o.position: o for o in self._judged(replay(ctx.handle, current.recording, close), close)}

        exact = rechecked({p: -o.margin for p, o in ranked.items()}, measured, lambda o: -o.margin,
                          self.options.recheck_within)
        return [exact.get(p, ranked[p]) for p in positions]

    def _round(self, handle: ModelHandle) -> Round:
        """This model's round: recorded once, and after one more removal built from the previous round;
        recorded anew once any of the model's weights changed (a healer, an optimiser step)."""
        previous = self._rounds.get(handle.model)
        if previous is not None and not same_weights(handle.model, previous.weights):
            previous = None
        if previous is None or previous.kept != handle.kept:
            if previous is not None and removed_block(previous.kept, handle.kept) is not None:
                self._rounds[handle.model] = previous.after_removal(handle)
            else:
                self._rounds.pop(handle.model, None)  # free the old round before recording anew
                recording = record(handle, self.items(), range(handle.num_layers))
                self._rounds[handle.model] = Round(handle.kept, recording, weights_of(handle.model))
        return self._rounds[handle.model]

    def _judged(self, scores: dict[int, list[torch.Tensor]], positions: list[int]) -> list[Outcome]:
        gold = [item.gold for item in self.items()]
        result = []
        for p in positions:
            final = decision_profile([s.float().unsqueeze(1) for s in scores[p]], gold)
            result.append(Outcome(p, final.decision_margin[-1], final.acc[-1], final.transition.layer is not None))
        return result

    def score(self, ctx: ScoringContext) -> list[float]:
        return ordered_scores(self.outcomes(ctx))


class DecisionGuided(Decision):
    """Decision pruning restricted to the Decisive Phase (l* re-located each step); stops before collapse."""

    name = "decision_guided"
    default_schedule = "decisive_phase"


class DecisionStop(ScheduleStopped):
    """Decision-guided pruning cannot remove another block without collapsing the calibration decision."""


def _layers(layers: list[int]) -> str:
    return f"layers {layers[0]}-{layers[-1]}" if len(layers) > 1 else f"layer {layers[0]}"


class PhaseOptions(Options):
    readout: Literal["logit", "tuned"] = "logit"  # the lens the phases are found with


class DecisivePhase(Schedule):
    """Iterative removal among the current Decisive Phase only; stops when every candidate collapses the decision."""

    name = "decisive_phase"
    prefix_consistent = True  # greedy, one block per step
    Options = PhaseOptions

    def plan(self, scorer: Scorer, ctx: ScoringContext, k: int, progress=None) -> PrunePlan:
        if not isinstance(scorer, Decision):
            raise DrtframeError(f"schedule {self.name} needs a decision scorer (decision, decision_guided), "
                                f"not {scorer.name}")
        order: list[int] = []
        first = None
        for _ in range(k):
            with ctx.handle.temporarily_without(tuple(order)) as pruned:
                step_ctx = replace(ctx, handle=pruned)
                decisive = scorer.profile(step_ctx, self.options.readout).decisive_phase
                outcomes = scorer.outcomes(step_ctx, decisive) if decisive else []
                if first is None:
                    by_position = dict(zip(decisive, ordered_scores(outcomes)))
                    first = scores_in_original_numbering(step_ctx, [by_position.get(p) for p in range(pruned.num_layers)])
                best = self._best(scorer, step_ctx, outcomes)
                if best is None:
                    raise DecisionStop(self._stop_message(scorer, pruned, decisive, order, k), tuple(order))
                order.append(pruned.kept[best.position])
            if progress:
                progress(1)
        return PrunePlan(scorer.name, tuple(sorted(order)), tuple(order), first)

    @staticmethod
    def _best(scorer: Decision, ctx: ScoringContext, outcomes: list[Outcome]) -> Outcome | None:
        """The deciding candidate with the best margin, its verdict measured exactly: a candidate ranked in
        bfloat16 only is re-measured before it is taken (a verdict near the threshold may differ)."""
        by_position = {o.position: o for o in outcomes}
        while True:
            safe = [o for o in by_position.values() if o.decides]
            if not safe:
                return None
            best = min(safe, key=lambda o: (-o.margin, -o.acc, o.position))
            if best.exact:
                return best
            by_position[best.position] = scorer.outcomes(ctx, [best.position], exact=True)[0]

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
