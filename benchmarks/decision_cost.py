"""Block forwards of iterative decision pruning with cached block inputs, against naive re-evaluation.

Removing candidate j leaves blocks 0..j-1 unchanged, so the cached path runs one forward per batch
to keep every block's input and then only the blocks after j; naive re-evaluation re-runs the whole
model per candidate (the scorer's `cache=false`). This counts block forwards (one batch through one
block counts one) for both on the same calibration items, checks that they remove blocks in the same
order, and prints the ratio (about (L + L(L-1)/2 + 1) / (L(L-1)) per round: 0.53 for 30 blocks).

    python benchmarks/decision_cost.py --data-dir ../shared/data/mc [--calib-items 4] [-k 2]
"""

from __future__ import annotations

import argparse
import time

from drtframe.hidden_states import count_block_forwards
from drtframe.methods import resolve_method
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugins import load_registry
from drtframe.scoring import ScoringContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--benchmark", default="arc_easy")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--data-dir", default="../shared/data/mc")
    parser.add_argument("--eval-items", type=int, default=200)
    parser.add_argument("--calib-items", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("-k", "--remove", type=int, default=2)
    args = parser.parse_args()

    registry = load_registry()
    handle = load_model(ModelSpec(args.model), registry)
    ctx = ScoringContext(handle, None, args.batch_size)
    options = {"benchmark": args.benchmark, "split": args.split, "data_dir": args.data_dir,
               "eval_items": str(args.eval_items), "calib_items": str(args.calib_items)}
    runs = {}
    for cache in (True, False):
        method = resolve_method(registry, "decision@iterative", {**options, "cache": str(cache)})
        method.scorer.items()  # load before counting and timing
        start = time.perf_counter()
        with count_block_forwards(handle) as counter:
            plan = method.schedule.plan(method.scorer, ctx, args.remove)
        runs[cache] = (counter.count, time.perf_counter() - start, plan.order)

    record = method.scorer.item_record()
    print(f"{args.model}: decision@iterative, k={args.remove}, {record['benchmark']} {record['split']} items "
          f"{record['first_item']}-{record['last_item']}, batch {args.batch_size} sequences")
    for cache, label in ((False, "naive re-evaluation"), (True, "cached block inputs")):
        count, seconds, order = runs[cache]
        print(f"  {label:20s} {count:7d} block forwards  {seconds:8.1f} s  order {list(order)}")
    print(f"  ratio {runs[True][0] / runs[False][0]:.3f}x block forwards, {runs[True][1] / runs[False][1]:.3f}x time; "
          f"same order: {runs[True][2] == runs[False][2]}")


if __name__ == "__main__":
    main()
