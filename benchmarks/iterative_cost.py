"""Block forwards of iterative perplexity (SLEB) with cached block inputs, against naive re-evaluation.

Naive re-evaluation re-runs the whole model once per candidate block, every round. With the cache,
each round runs one forward per batch to keep every block's input, then only the blocks after the
candidate. This counts block forwards (one batch through one block counts one) for both, checks
that they choose the same removal order, and prints the ratio. Target: at most 0.6x, same order.

    python benchmarks/iterative_cost.py --calibration wiki.test.raw [--model smollm2-135m] [-k 8]
"""

from __future__ import annotations

import argparse
import time

from drtframe.calibration import CalibrationSpec, calibration_tokens
from drtframe.hidden_states import count_block_forwards
from drtframe.methods import resolve_method
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugins import load_registry
from drtframe.scoring import ScoringContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--calibration", default="wikitext2")
    parser.add_argument("--n-samples", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("-k", "--remove", type=int, default=8)
    args = parser.parse_args()

    registry = load_registry()
    handle = load_model(ModelSpec(args.model), registry)
    tokens = calibration_tokens(CalibrationSpec(args.calibration, args.n_samples, args.seq_len), handle.tokenizer)
    ctx = ScoringContext(handle, tokens, args.batch_size)

    runs = {}
    for cache in (True, False):
        method = resolve_method(registry, "perplexity@iterative", {"cache": str(cache)})
        start = time.perf_counter()
        with count_block_forwards(handle) as counter:
            plan = method.schedule.plan(method.scorer, ctx, args.remove)
        runs[cache] = (counter.count, time.perf_counter() - start, plan.order)

    print(f"{args.model}: perplexity@iterative, k={args.remove}, {args.n_samples} x {args.seq_len} tokens, "
          f"batch {args.batch_size}")
    for cache, label in ((False, "naive re-evaluation"), (True, "cached block inputs")):
        count, seconds, order = runs[cache]
        print(f"  {label:20s} {count:7d} block forwards  {seconds:8.1f} s  order {list(order)}")
    print(f"  ratio {runs[True][0] / runs[False][0]:.3f}x block forwards, {runs[True][1] / runs[False][1]:.3f}x time; "
          f"same order: {runs[True][2] == runs[False][2]}")


if __name__ == "__main__":
    main()
