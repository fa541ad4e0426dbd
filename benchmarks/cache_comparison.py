"""Shared by the iterative-cost benchmarks: plan with and without cached block inputs, count, time, print."""

from __future__ import annotations

import time

from drtframe.forward.hidden_states import count_block_forwards
from drtframe.scoring.methods import resolve_method


def compare_cached(registry, handle, ctx, method_name: str, options: dict, k: int, prepare=None):
    """{cache: (block forwards, wall seconds, CPU seconds, wall seconds per round, order)} for the method
    planned with cache on and off, and the method itself (as last configured)."""
    runs = {}
    for cache in (True, False):
        method = resolve_method(registry, method_name, {**options, "cache": str(cache)})
        if prepare:
            prepare(method)  # load what the method reads before counting and timing
        rounds = [time.perf_counter()]
        start, cpu = rounds[0], time.process_time()
        with count_block_forwards(handle) as counter:
            plan = method.schedule.plan(method.scorer, ctx, k, progress=lambda _: rounds.append(time.perf_counter()))
        per_round = [b - a for a, b in zip(rounds, rounds[1:])]
        runs[cache] = (counter.count, time.perf_counter() - start, time.process_time() - cpu, per_round, plan.order)
    return runs, method


def print_comparison(runs: dict, labels=("naive re-evaluation", "cached block inputs")) -> None:
    """Both runs side by side: block forwards (those of the model passed in), wall and CPU time, rounds, order."""
    for cache, label in zip((False, True), labels):
        count, wall, cpu, per_round, order = runs[cache]
        rounds = " ".join(f"{s:.0f}" for s in per_round)
        print(f"  {label:28s} {count:7d} block forwards  {wall:8.1f} s wall  {cpu:8.1f} s CPU  "
              f"rounds [{rounds}] s  order {list(order)}")
    print(f"  ratio {runs[True][0] / runs[False][0]:.3f}x block forwards, {runs[True][1] / runs[False][1]:.3f}x wall, "
          f"{runs[True][2] / runs[False][2]:.3f}x CPU; same order: {runs[True][4] == runs[False][4]}")
