"""Iterative decision pruning: the fast path against the slow reference, side by side, on SmolLM2.

The slow path (`cache=false`) re-runs the whole float32 model per candidate with the evaluator's engine
(each context once, its choices beside it in the same row). The fast path records every block's input
once per round, replays runs of adjacent candidates stacked into one forward from their first block
in a bfloat16 copy of the model (candidates before the previous round's removal resume from their
own earlier replay), then re-checks the leading candidates in float32. Both plan on the same
calibration items; this prints block forwards of the float32 model (a stacked forward counts once,
and the bfloat16 copy's are not counted), wall and CPU time, the wall time of each round, and
whether the orders agree.

    OMP_NUM_THREADS=1 python benchmarks/decision_cost.py --calib-items 100 -k 8   # the packaged sample
    python benchmarks/decision_cost.py --benchmark arc_easy --data-dir ../shared/data/mc --calib-items 4 -k 2
"""

from __future__ import annotations

import argparse

import torch

from cache_comparison import compare_cached, print_comparison
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugin_system.manager import load_registry
from drtframe.scoring.scorer import ScoringContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--benchmark", help="default: the packaged ARC-Easy sample")
    parser.add_argument("--split")
    parser.add_argument("--data-dir")
    parser.add_argument("--eval-items", type=int)
    parser.add_argument("--calib-items", type=int, default=4)
    parser.add_argument("-k", "--remove", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)

    registry = load_registry()
    handle = load_model(ModelSpec(args.model), registry)
    ctx = ScoringContext(handle, None)
    named = {"benchmark": args.benchmark, "split": args.split, "data_dir": args.data_dir, "eval_items": args.eval_items}
    options = {key: str(value) for key, value in named.items() if value is not None}
    options["calib_items"] = str(args.calib_items)
    runs, method = compare_cached(registry, handle, ctx, "decision@iterative", options, args.remove,
                          prepare=lambda method: method.scorer.items())

    record = method.scorer.item_record()
    print(f"{args.model}: decision@iterative, k={args.remove}, {record['benchmark']} {record['split']} items "
          f"{record['first_item']}-{record['last_item']}")
    print_comparison(runs, ("slow (cache=false)", "fast (stacked, bf16 + f32)"))


if __name__ == "__main__":
    main()
