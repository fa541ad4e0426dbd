"""Would the collapse guard have caught the collapses? Its verdict on every pruned model of a collapse run.

Reads OUT/collapse.csv (written by collapse_curves.py), probes the dense model and every distinct
removed set once on the guard's default items (the packaged ARC-Easy sample, validation rows
470-569, disjoint from the evaluation windows of the curves), and writes OUT/guard.csv and a table:
method, K, the evaluated accuracies, the guard's final lens accuracy and its verdict (`pass`,
`refuse`, or `not checked` when the dense model shows no transition). `--shard i/n` splits the
removed sets between processes.

    python benchmarks/guard_verdicts.py --out /work/notes/collapse
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

FIELDS = ["method", "k", "removed", "accuracies", "guard_acc", "baseline", "transition_layer", "verdict"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--shard", default="0/1")
    args = parser.parse_args()

    from drtframe.models.loading import ModelSpec, load_model
    from drtframe.plugin_system.manager import load_registry
    from drtframe.pruning.runner import guard_verdict, probe_profile
    from drtframe.scoring.calibration_items import ItemWindow

    with open(args.out / "collapse.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["removed"] and r["method"] != "dense"]
    runs: dict[tuple[str, str, str], list[str]] = {}
    for r in rows:
        runs.setdefault((r["method"], r["k"], r["removed"]), []).append(f"{r['task']} {float(r['acc']):.3f}")
    index, count = map(int, args.shard.split("/"))
    mine = sorted(runs)[index::count]

    registry = load_registry()
    handle = load_model(ModelSpec(args.model), registry)
    items, _ = ItemWindow.sample().load(registry)
    dense = probe_profile(handle, items)
    print(f"dense: guard accuracy {dense.acc[-1]:.2f}, l* {dense.transition.layer}", flush=True)
    path = args.out / f"guard-{index}.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        for method, k, removed in mine:
            with handle.temporarily_without(tuple(map(int, removed.split()))) as pruned:
                profile = probe_profile(pruned, items)
            row = {"method": method, "k": k, "removed": removed, "accuracies": ", ".join(runs[method, k, removed]),
                   "guard_acc": f"{profile.acc[-1]:.2f}", "baseline": f"{profile.transition.baseline:.2f}",
                   "transition_layer": profile.transition.layer, "verdict": guard_verdict(dense.transition.layer, profile.transition.layer)}
            writer.writerow(row)
            fh.flush()
            print(f"  {method} K={k} ({row['accuracies']}): guard accuracy {row['guard_acc']} -> {row['verdict']}",
                  flush=True)


if __name__ == "__main__":
    main()
