"""Block forwards of iterative perplexity (SLEB) with cached block inputs, against naive re-evaluation.

Naive re-evaluation re-runs the whole model once per candidate block, every round. With the cache,
each round runs one forward per batch to keep every block's input, then only the blocks after the
candidate. This counts block forwards (one batch through one block counts one) for both, checks
that they choose the same removal order, and prints the ratio. Target: at most 0.6x, same order.

    python benchmarks/iterative_cost.py --calibration wiki.test.raw [--model smollm2-135m] [-k 8]
"""

from __future__ import annotations

import argparse

from drtframe.scoring.calibration import CalibrationSpec, calibration_tokens
from cache_comparison import compare_cached, print_comparison
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugin_system.manager import load_registry
from drtframe.scoring.scorer import ScoringContext


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

    runs, _ = compare_cached(registry, handle, ctx, "perplexity@iterative", {}, args.remove)

    print(f"{args.model}: perplexity@iterative, k={args.remove}, {args.n_samples} x {args.seq_len} tokens, "
          f"batch {args.batch_size}")
    print_comparison(runs)


if __name__ == "__main__":
    main()
