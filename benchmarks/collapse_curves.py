"""Accuracy against blocks removed (K): does decision-guided pruning avoid the collapse others run into?

For each method the removal order is planned once (prefixes give every K, since one-shot and
iterative choices do not depend on K; contiguous runs are planned per K), each pruned model is
evaluated with the evaluator on the first `--eval-items` items of each task, and the rows are
appended to OUT/collapse.csv, so runs with different `--methods` can share one table. Then the
plot OUT/collapse.png is redrawn from every row, and the dense model's calibration profile with its
phases goes to OUT/dense-profile.png. decision_guided reads items `--eval-items`.. of
`--calib-benchmark` (disjoint from every evaluation window) and may stop early: rows past its stop
say so.

    python benchmarks/collapse_curves.py --out /work/notes/collapse --data-dir ../shared/data/mc \\
        --calibration /work/shared/data/text/wikitext-2-raw/wiki.test.raw
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from drtframe.calibration import CalibrationSpec, calibration_tokens
from drtframe.evaluation.runner import evaluate, resolve_benchmark
from drtframe.methods import resolve_method
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugins import load_registry
from drtframe.probing.plots import plot_profile
from drtframe.scoring import ScoringContext
from drtframe_plugins.decision import Decision, DecisionStop

FIELDS = ["task", "method", "k", "acc", "acc_norm", "n", "removed", "note"]
METHODS = "block_influence,angular_distance,reverse_order,perplexity,decision_guided"


def removal_orders(method, ctx: ScoringContext, ks: list[int]) -> dict[int, tuple[int, ...] | str]:
    """K -> the blocks the method removes, or why it removes none (decision_guided's stop)."""
    if method.schedule.name == "contiguous":
        return {k: method.schedule.plan(method.scorer, ctx, k).order for k in ks}
    try:
        order = method.schedule.plan(method.scorer, ctx, max(ks)).order
    except DecisionStop as stop:
        order = stop.order
        print(f"  {stop}", flush=True)
    return {k: order[:k] if k <= len(order) else f"stopped after {len(order)} removals" for k in ks}


def append_rows(path: Path, rows: list[dict]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in rows if r["task"] == task]
        dense = [float(r["acc"]) for r in mine if r["method"] == "dense"]
        for method in sorted({r["method"] for r in mine} - {"dense"}):
            points = [(0, a) for a in dense[:1]]
            points += sorted((int(r["k"]), float(r["acc"])) for r in mine if r["method"] == method and r["acc"])
            ax.plot([k for k, _ in points], [a for _, a in points], marker="o", label=method)
        ax.set_title(f"{task} (n={mine[0]['n']})")
        ax.set_xlabel("blocks removed K")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mc"))
    parser.add_argument("--tasks", default="arc_easy,piqa")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--eval-items", type=int, default=200)
    parser.add_argument("--calib-benchmark", default="arc_easy")
    parser.add_argument("--calib-items", type=int, default=50)
    parser.add_argument("--calibration", default="/work/shared/data/text/wikitext-2-raw/wiki.test.raw")
    parser.add_argument("--n-samples", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--ks", default="2,4,6,8,10,12")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--dense", action="store_true", help="Also evaluate the dense model (K=0).")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ks = [int(k) for k in args.ks.split(",")]

    registry = load_registry()
    handle = load_model(ModelSpec(args.model), registry)
    tokens = calibration_tokens(CalibrationSpec(args.calibration, args.n_samples, args.seq_len), handle.tokenizer)
    ctx = ScoringContext(handle, tokens, 8)
    tasks = [resolve_benchmark(registry, name, args.split) for name in args.tasks.split(",")]
    decision_options = {"benchmark": args.calib_benchmark, "split": args.split, "data_dir": str(args.data_dir),
                        "eval_items": str(args.eval_items), "calib_items": str(args.calib_items)}

    def evaluated(method: str, k: int, removed) -> list[dict]:
        rows = []
        for task in tasks:
            if isinstance(removed, str):
                rows.append({"task": task.name, "method": method, "k": k, "n": args.eval_items, "note": removed})
                continue
            with handle.temporarily_without(tuple(removed)) as pruned:
                score = evaluate(pruned, task, None, args.eval_items, args.data_dir).score
            rows.append({"task": task.name, "method": method, "k": k, "acc": f"{score.acc:.4f}",
                         "acc_norm": f"{score.acc_norm:.4f}", "n": score.n,
                         "removed": " ".join(map(str, removed))})
            print(f"  {task.name} {method} K={k}: acc {score.acc:.3f}", flush=True)
        return rows

    if args.dense:
        append_rows(args.out / "collapse.csv", evaluated("dense", 0, ()))
    for name in args.methods.split(","):
        method = resolve_method(registry, name, decision_options if name.startswith("decision") else {})
        print(f"planning {method.name}", flush=True)
        if isinstance(method.scorer, Decision):
            profile = method.scorer.profile(ctx)
            record = method.scorer.item_record()
            plot_profile(profile, args.out / "dense-profile.png",
                         f"{args.model} on {record['benchmark']} items {record['first_item']}-{record['last_item']}")
            (args.out / "calibration.json").write_text(json.dumps(
                {"decision_items": record, "transition_layer": profile.transition.layer,
                 "decisive_phase": profile.decisive_phase, "baseline": profile.transition.baseline,
                 "lens_acc": profile.acc}, indent=2) + "\n")
        orders = removal_orders(method, ctx, ks)
        append_rows(args.out / "collapse.csv", [row for k in ks for row in evaluated(name, k, orders[k])])
    with open(args.out / "collapse.csv") as fh:
        plot(args.out / "collapse.png", list(csv.DictReader(fh)))


if __name__ == "__main__":
    main()
