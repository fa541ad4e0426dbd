"""Does linear_ls healing give accuracy back? Healed against unhealed, side by side, on SmolLM2-135M.

For block_influence and perplexity (SLEB) at K = 4, 8, 12: acc on the first 200 validation items of
arc_easy and piqa (cloze), and WikiText-2 perplexity on text outside every calibration portion (the
raw test split from byte 400,000 on; the packaged calibration excerpt is its first 128 KiB), for the
pruned model as it is and healed. Removal orders come from the packaged WikiText-2 excerpt (8 x 128
tokens for block influence, 8 x 64 for SLEB's K x L re-scoring); the heal is fitted on its first
32 x 256 tokens. Also the fit's time and the size of its normal equations. Prints a table, writes a
CSV and a plot.

    python benchmarks/healing_evidence.py --data-dir ../shared/data/mc \
        --text ../shared/data/text/wikitext-2-raw/wiki.test.raw --out /tmp/healing
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import torch

from drtframe.comparison.cells import load_benchmark
from drtframe.evaluation.loglikelihood import loglikelihoods
from drtframe.evaluation.runner import benchmark_result
from drtframe.healing.apply import heal, resolve_healer
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugin_system.manager import load_registry
from drtframe.scoring.calibration import CalibrationSpec, chunk_tokens
from drtframe.scoring.methods import resolve_method


@torch.inference_mode()
def perplexity(handle, ids: torch.Tensor) -> float:
    total, count = 0.0, 0
    for start in range(0, len(ids), 4):
        batch = ids[start:start + 4]
        logits = handle.model(input_ids=batch).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="sum")
        total, count = total + float(nll), count + batch[:, 1:].numel()
    return math.exp(total / count)


def measure(handle, benches, held_out) -> dict:
    row = {}
    for bench in benches:
        result = benchmark_result(bench.name, bench.format, bench.items, loglikelihoods(handle, bench.items))
        row[bench.name] = result.score.acc
    row["wikitext_ppl"] = perplexity(handle, held_out)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mc"))
    parser.add_argument("--text", type=Path, default=Path("../shared/data/text/wikitext-2-raw/wiki.test.raw"))
    parser.add_argument("--out", type=Path, default=Path("healing-evidence"))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--budgets", default="4,8,12")
    parser.add_argument("--methods", default="block_influence,perplexity")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    budgets = [int(k) for k in args.budgets.split(",")]
    registry = load_registry()
    handle = load_model(ModelSpec("smollm2-135m"), registry)
    benches = [load_benchmark(registry, name, "validation", None, args.limit, args.data_dir) for name in ("arc_easy", "piqa")]
    held_out = chunk_tokens(handle.tokenizer, args.text.read_text(encoding="utf-8")[400_000:], 16, 256)
    healer = resolve_healer(registry, "linear_ls")
    heal_calibration = CalibrationSpec("wikitext2-sample", 32, 256)
    rows = [{"method": "dense", "k": 0, "healed": False, **measure(handle, benches, held_out)}]
    print(rows[0], flush=True)
    plans = {"block_influence": CalibrationSpec("wikitext2-sample", 8, 128),
             "perplexity": CalibrationSpec("wikitext2-sample", 8, 64)}
    for name in args.methods.split(","):
        calibration = plans[name]
        order = resolve_method(registry, name).plan(handle, max(budgets), calibration).order
        for k in budgets:
            removed = tuple(sorted(order[:k]))
            with handle.temporarily_without(removed) as pruned:
                rows.append({"method": name, "k": k, "healed": False, "removed": removed,
                             **measure(pruned, benches, held_out)})
            print(rows[-1], flush=True)
            original = {n: t.clone() for n, t in handle.model.state_dict().items()}
            start = time.perf_counter()
            record = heal(handle, removed, healer, heal_calibration)
            fit_s = time.perf_counter() - start
            with handle.temporarily_without(removed) as pruned:
                rows.append({"method": name, "k": k, "healed": True, "removed": removed, "fit_s": fit_s,
                             "runs": len(record["runs"]),
                             "error_removed": [round(r.get("error_removed", 0), 3) for r in record["runs"]],
                             **measure(pruned, benches, held_out)})
            handle.model.load_state_dict(original)
            print(rows[-1], flush=True)
    hidden = handle.model.config.hidden_size
    print(f"\nnormal equations per run: 2 x {hidden}^2 float64 = {2 * hidden * hidden * 8 / 2**20:.1f} MiB; "
          f"fit on {heal_calibration.n_samples} x {heal_calibration.seq_len} tokens")
    print(f"{'method':16s} {'K':>3s} {'healed':>7s} {'arc_easy':>9s} {'piqa':>7s} {'ppl':>9s} {'fit s':>6s}")
    for r in rows:
        print(f"{r['method']:16s} {r['k']:3d} {str(r['healed']):>7s} {r['arc_easy']:9.3f} {r['piqa']:7.3f} "
              f"{r['wikitext_ppl']:9.1f} {r.get('fit_s', float('nan')):6.1f}")
    with open(args.out / "healing.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, sorted({key for r in rows for key in r}))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, budgets, args.out / "healing.png")


def plot(rows, budgets, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dense = rows[0]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, metric in zip(axes, ("arc_easy", "piqa", "wikitext_ppl")):
        for color, method in zip(("tab:blue", "tab:green"), sorted({r["method"] for r in rows} - {"dense"})):
            for healed in (False, True):
                points = [(r["k"], r[metric]) for r in rows if r["method"] == method and r["healed"] == healed]
                ax.plot(*zip(*([(0, dense[metric])] + points)), marker="o", ls="--" if healed else "-", color=color,
                        label=f"{method}{' + linear_ls' if healed else ''}")
        ax.axhline(dense[metric], color="black", lw=0.8, ls=":")
        ax.set_xticks([0, *budgets])
        ax.set_xlabel("blocks removed")
        ax.set_title(metric + (" (lower is better)" if metric == "wikitext_ppl" else " acc"))
        if metric == "wikitext_ppl":
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("SmolLM2-135M: linear_ls healing against the unhealed pruned model")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
