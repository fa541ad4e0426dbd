"""Shared by the iterative-cost benchmarks: plan with and without cached block inputs, count, print."""

from __future__ import annotations

import time

from drtframe.hidden_states import count_block_forwards
from drtframe.methods import resolve_method


def compare_cached(registry, handle, ctx, method_name: str, options: dict, k: int, prepare=None):
    """{cache: (block forwards, seconds, order)} for the method planned with cache on and off, and
    the method itself (as last configured)."""
    runs = {}
    for cache in (True, False):
        method = resolve_method(registry, method_name, {**options, "cache": str(cache)})
        if prepare:
            prepare(method)  # load what the method reads before counting and timing
        start = time.perf_counter()
        with count_block_forwards(handle) as counter:
            plan = method.schedule.plan(method.scorer, ctx, k)
        runs[cache] = (counter.count, time.perf_counter() - start, plan.order)
    return runs, method


def print_comparison(runs: dict) -> None:
    for cache, label in ((False, "naive re-evaluation"), (True, "cached block inputs")):
        count, seconds, order = runs[cache]
        print(f"  {label:20s} {count:7d} block forwards  {seconds:8.1f} s  order {list(order)}")
    print(f"  ratio {runs[True][0] / runs[False][0]:.3f}x block forwards, {runs[True][1] / runs[False][1]:.3f}x time; "
          f"same order: {runs[True][2] == runs[False][2]}")
