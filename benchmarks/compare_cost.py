"""Block forwards and wall time of a compare grid's evaluation: replaying the dense model's recorded
block inputs against evaluating every variant from scratch, side by side in one run.

A variant whose first removed block is j replays the dense pass's recorded inputs of block j and
runs only the blocks it keeps after j; from scratch, it runs every block it keeps. Both must give
the same scores (checked here to 1e-5). The grid's variants are read from a finished
`drtframe compare` run (its results.json), so this measures exactly that grid.

    drtframe compare -O drtframe-results          # the default grid
    python benchmarks/compare_cost.py drtframe-results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from drtframe.comparison.cells import load_benchmark
from drtframe.comparison.request import CompareRequest
from drtframe.comparison.variants import variant_scores
from drtframe.forward.hidden_states import count_block_forwards
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugin_system.manager import load_registry
from drtframe.scoring.calibration_items import ItemWindow


def measure(handle, items, variants, per_layer: bool, replay: bool):
    start = time.perf_counter()
    with count_block_forwards(handle) as counter:
        scores = dict(variant_scores(handle, items, variants, per_layer, replay))
    return counter.count, time.perf_counter() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the output directory of a finished drtframe compare run")
    args = parser.parse_args()
    data = json.loads((args.results / "results.json").read_text())
    grid = data["grid"]
    registry = load_registry()
    handle = load_model(ModelSpec(grid["model"], dtype=grid["dtype"]), registry)
    variants = sorted({tuple(c["removed"]) for c in data["cells"] if c["healer"] == "none"})  # dense () first
    data_dir = CompareRequest(data_dir=grid["data_dir"]).local_data
    work = [(b, load_benchmark(registry, b, grid["split"], grid["format"], grid["limit"], data_dir).items, False)
            for b in grid["benchmarks"]]
    if grid["guard"]:
        work.append(("guard profiles", ItemWindow.sample(data["guard_items"]["n"]).load(registry)[0], True))
    print(f"{grid['model']}: {len(variants)} removed sets (dense included), "
          f"{', '.join(f'{name} ({len(items)} items)' for name, items, _ in work)}")
    totals = {True: [0, 0.0], False: [0, 0.0]}
    for name, items, per_layer in work:
        runs = {replay: measure(handle, items, variants, per_layer, replay) for replay in (False, True)}
        worst = max((s - t).abs().max().item() for v in variants
                    for s, t in zip(runs[True][2][v], runs[False][2][v]))
        for replay in (False, True):
            totals[replay][0] += runs[replay][0]
            totals[replay][1] += runs[replay][1]
        print(f"  {name:16s} from scratch {runs[False][0]:7d} block forwards {runs[False][1]:7.1f} s | replay "
              f"{runs[True][0]:7d} {runs[True][1]:7.1f} s | {runs[True][0] / runs[False][0]:.3f}x forwards, "
              f"{runs[True][1] / runs[False][1]:.3f}x time; largest score difference {worst:.1e}")
    print(f"  {'grid':16s} from scratch {totals[False][0]:7d} block forwards {totals[False][1]:7.1f} s | replay "
          f"{totals[True][0]:7d} {totals[True][1]:7.1f} s | {totals[True][0] / totals[False][0]:.3f}x forwards, "
          f"{totals[True][1] / totals[False][1]:.3f}x time")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
