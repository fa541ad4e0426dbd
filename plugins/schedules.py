"""The three schedules: one-shot, iterative (re-score after each removal) and contiguous run."""

from __future__ import annotations

from dataclasses import replace

from drtframe import PrunePlan, Schedule, Scorer, ScoringContext, hookimpl, scores_in_original_numbering


def _lowest(scores: list[float]) -> int:
    """Position of the lowest score; ties go to the lower position, so plans are deterministic."""
    return min(range(len(scores)), key=lambda i: (scores[i], i))


class OneShot(Schedule):
    """Score all blocks once and remove the k lowest."""

    name = "one_shot"
    prefix_consistent = True  # the k lowest of one ranking

    def plan(self, scorer: Scorer, ctx: ScoringContext, k: int, progress=None) -> PrunePlan:
        scores = scorer.score(ctx)
        ranked = sorted(range(len(scores)), key=lambda i: (scores[i], i))[:k]
        order = tuple(ctx.handle.kept[i] for i in ranked)
        if progress:
            progress(k)
        return PrunePlan(scorer.name, tuple(sorted(order)), order, scores_in_original_numbering(ctx, scores))


class Iterative(Schedule):
    """Remove the lowest-scoring block, re-score the pruned model, repeat k times."""

    name = "iterative"
    prefix_consistent = True  # each greedy step ignores how many follow

    def plan(self, scorer: Scorer, ctx: ScoringContext, k: int, progress=None) -> PrunePlan:
        order: list[int] = []
        first = None
        for _ in range(k):
            with ctx.handle.temporarily_without(tuple(order)) as pruned:
                step_ctx = replace(ctx, handle=pruned)
                scores = scorer.score(step_ctx)
                first = first or scores_in_original_numbering(step_ctx, scores)
                order.append(pruned.kept[_lowest(scores)])
            if progress:
                progress(1)
        return PrunePlan(scorer.name, tuple(sorted(order)), tuple(order), first)


class Contiguous(Schedule):
    """Remove the run of k adjacent blocks whose removal scores lowest (Gromov et al. 2024)."""

    name = "contiguous"  # not prefix-consistent: the best run of k is planned anew for each k

    def default_count(self, scorer: Scorer, num_layers: int) -> int:
        """The run length the scorer's option `n` sets (angular distance has one), else 1."""
        return getattr(scorer.options, "n", None) or 1

    def plan(self, scorer: Scorer, ctx: ScoringContext, k: int, progress=None) -> PrunePlan:
        runs = scorer.score_runs(ctx, k)
        start = _lowest(runs)
        order = tuple(ctx.handle.kept[start:start + k])
        if progress:
            progress(k)
        return PrunePlan(scorer.name, order, order, scores_in_original_numbering(ctx, runs))


@hookimpl
def drtframe_register_schedules(register):
    register(OneShot)
    register(Iterative)
    register(Contiguous)
