"""Block forwards of iterative decision pruning with cached block inputs, against naive re-evaluation.

Removing candidate j leaves blocks 0..j-1 unchanged, so the cached path runs the evaluator's forwards
of a batch once to record every block's input and then only the blocks after j; naive re-evaluation
re-runs the whole model per candidate (the scorer's `cache=false`). Both use the evaluator's engine
(each context once, its KV cache shared by the choices). This counts block forwards (one forward
of a batch through one block counts one) for both on the same calibration items, checks that they
remove blocks in the same order, and prints the ratio (about (L + L(L-1)/2 + 1) / (L(L-1)) per round: 0.53 for 30 blocks).

    python benchmarks/decision_cost.py --data-dir ../shared/data/mc [--calib-items 4] [-k 2]
"""

from __future__ import annotations

import argparse

from cache_comparison import compare_cached, print_comparison
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
    parser.add_argument("-k", "--remove", type=int, default=2)
    args = parser.parse_args()

    registry = load_registry()
    handle = load_model(ModelSpec(args.model), registry)
    ctx = ScoringContext(handle, None)
    options = {"benchmark": args.benchmark, "split": args.split, "data_dir": args.data_dir,
               "eval_items": str(args.eval_items), "calib_items": str(args.calib_items)}
    runs, method = compare_cached(registry, handle, ctx, "decision@iterative", options, args.remove,
                          prepare=lambda method: method.scorer.items())

    record = method.scorer.item_record()
    print(f"{args.model}: decision@iterative, k={args.remove}, {record['benchmark']} {record['split']} items "
          f"{record['first_item']}-{record['last_item']}")
    print_comparison(runs)


if __name__ == "__main__":
    main()
