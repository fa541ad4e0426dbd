"""Accuracy against blocks removed (K), per model, through `drtframe compare`: which method avoids collapse?

For each model, one `compare` runs every method under the logit lens, and a second one runs the
methods whose choices depend on the readout (`--tuned-methods`: decision_guided finds its phases
through the lens) under the tuned lens. Evaluation is on the packaged ARC-Easy and PIQA validation
rows 0..N-1; the decision scorers and the guard read ARC-Easy rows 470-569, disjoint from them. The
rows of every run go to OUT/collapse.csv (the readout-dependent methods are labelled
`method[tuned]`), a retention table is printed, and OUT/collapse.png draws accuracy against K with
one panel per model and benchmark. Each compare keeps its cache in OUT/<model>-<readout>, so a
rerun resumes.

    python benchmarks/collapse_curves.py --out /work/notes/collapse
    python benchmarks/collapse_curves.py --out /work/notes/collapse --models gemma3-270m --budgets 2,4,6,7 \\
        --methods block_influence,reverse_order,angular_distance,decision_guided,block_influence@guarded \\
        --item-option benchmark=arc_easy --item-option data_dir=drtframe/samples/eval \\
        --item-option split=validation --item-option eval_items=100 --tuned-methods ""
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from drtframe.comparison.request import CompareRequest
from drtframe.comparison.runner import compare
from drtframe.models.loading import ModelSpec

METHODS = ("block_influence,perplexity,angular_distance,reverse_order,decision,decision_guided,"
           "block_influence@guarded,perplexity@guarded")
FIELDS = ["model", "readout", "method", "k", "benchmark", "n", "acc", "retention", "removed_layers", "error"]


def run(model: str, readout: str, methods: list[str], args) -> list[dict]:
    """One compare; its rows (dense included), labelled with the readout where it changes the method."""
    options = {name: {**({"calib_items": str(args.calib_items)} if name.startswith("decision") else {}),
                      **dict(pair.split("=", 1) for pair in args.item_option)}
               for name in methods if name.startswith("decision") or "@guarded" in name}
    request = CompareRequest(model=ModelSpec(model), methods=tuple(methods), budgets=args.budgets,
                             limit=args.limit, options=options, guard=None, readout=readout,
                             output_dir=args.out / f"{model}-{readout}")
    started = time.perf_counter()
    result = compare(request, progress=lambda p: print(f"  {p.description}", flush=True) if p.done % 10 == 0 else None)
    print(f"{model} ({readout} lens): {time.perf_counter() - started:.0f} s, {result.computed} computed, "
          f"{result.from_cache} from the cache", flush=True)
    rows = []
    for row in result.rows():
        if row["healer"] != "none":
            continue
        label = row["method"] if readout == "logit" or row["method"] == "dense" else f"{row['method']}[{readout}]"
        rows.append({"model": model, "readout": readout, **{k: row[k] for k in FIELDS if k in row}, "method": label})
    return rows


def plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["model"], r["benchmark"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (model, bench) in zip(axes[0], panels):
        mine = [r for r in rows if r["model"] == model and r["benchmark"] == bench]
        dense = next(float(r["acc"]) for r in mine if r["method"] == "dense")
        for method in sorted({r["method"] for r in mine} - {"dense"}):
            points = [(0, dense)] + sorted((int(r["k"]), float(r["acc"])) for r in mine
                                           if r["method"] == method and r["acc"] not in ("", None))
            ax.plot(*zip(*points), marker="o", label=method, linestyle="--" if "[" in method else "-")
        ax.set_title(f"{model}, {bench} (n={mine[0]['n']})")
        ax.set_xlabel("blocks removed K")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(rows: list[dict]) -> str:
    """Retention (pruned accuracy / dense) per method and K, one block per model and benchmark."""
    lines = []
    for model, bench in sorted({(r["model"], r["benchmark"]) for r in rows}):
        mine = [r for r in rows if r["model"] == model and r["benchmark"] == bench and r["method"] != "dense"]
        ks = sorted({int(r["k"]) for r in mine})
        lines.append(f"\n{model} {bench}: retention at K = {', '.join(map(str, ks))}")
        for method in sorted({r["method"] for r in mine}):
            cells = {int(r["k"]): r for r in mine if r["method"] == method}
            lines.append(f"  {method:34s}" + "".join(
                f"{float(cells[k]['retention']):7.2f}" if k in cells and cells[k]["retention"] not in ("", None)
                else "      -" for k in ks))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", default="smollm2-135m")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--tuned-methods", default="decision_guided",
                        help="Methods run again under the tuned lens (those whose choices read the lens).")
    parser.add_argument("--budgets", default="2,4,6,8,10,12", help="K values; up to 40%% of the blocks.")
    parser.add_argument("--limit", type=int, default=100, help="Packaged evaluation rows per benchmark.")
    parser.add_argument("--calib-items", type=int, default=100, help="Calibration items of the decision scorers.")
    parser.add_argument("--item-option", action="append", default=[], metavar="KEY=VALUE",
                        help="Where the decision scorers and @guarded read their items, e.g. benchmark=arc_easy "
                             "(default: the packaged ARC-Easy sample, rows 470-569).")
    args = parser.parse_args()
    args.budgets = tuple(int(k) for k in args.budgets.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for model in args.models.split(","):
        rows += run(model, "logit", args.methods.split(","), args)
        if args.tuned_methods:
            rows += [r for r in run(model, "tuned", args.tuned_methods.split(","), args) if r["method"] != "dense"]
    with open(args.out / "collapse.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    plot(args.out / "collapse.png", rows)
    print(table(rows))
    print(f"\nrows in {args.out / 'collapse.csv'}, plot in {args.out / 'collapse.png'}")


if __name__ == "__main__":
    main()
