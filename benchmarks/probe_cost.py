"""Cost of probing every layer through the logit lens against a plain evaluation of the same items.

Both use the shared-context engine on the same items; the probe also keeps every layer's hidden
states at the predicting positions and projects them. Alternates plain evaluation, the probe with
its default bfloat16 normaliser for layers before the last, and the all-float32 probe, for
`--rounds` rounds; prints the best times, their ratios (target: probe at most 2x eval), the largest
difference between the two probes and whether the decision profile (transition layer, per-layer
accuracy) is the same under both.

    python benchmarks/probe_cost.py --data-dir ../shared/data/mc
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--tasks", default="arc_easy:validation,mmlu_anatomy:test")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from drtframe.evaluation.loglikelihood import loglikelihoods
    from drtframe.evaluation.runner import load_items, resolve_benchmark
    from drtframe.models.loading import ModelSpec, load_model
    from drtframe.plugin_system.manager import load_registry
    from drtframe.probing.lens import layer_scores
    from drtframe.probing.profile import decision_profile

    registry = load_registry()
    handle = load_model(ModelSpec(args.model, device="cpu", dtype="float32"), registry)
    for spec in args.tasks.split(","):
        task, split = spec.split(":")
        items = load_items(resolve_benchmark(registry, task, split), None, args.limit, args.data_dir)
        runs = {"eval": loglikelihoods, "probe": layer_scores,
                "exact probe": lambda h, i: layer_scores(h, i, exact=True)}
        best, out = dict.fromkeys(runs, float("inf")), {}
        for _ in range(args.rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                out[name] = run(handle, items)
                best[name] = min(best[name], time.perf_counter() - start)
        gap = max((a - b).abs().max().item() for a, b in zip(out["probe"], out["exact probe"]))
        gold = [item.gold for item in items]
        fast, exact = decision_profile(out["probe"], gold), decision_profile(out["exact probe"], gold)
        print(f"{task:14} {len(items)} items: eval {best['eval']:.1f} s, probe (all {handle.num_layers} layers) "
              f"{best['probe']:.1f} s ({best['probe'] / best['eval']:.2f}x), float32 probe {best['exact probe']:.1f} s "
              f"({best['exact probe'] / best['eval']:.2f}x)")
        print(f"{'':14} probes differ by at most {gap:.1e}; transition layer {fast.transition.layer} vs "
              f"{exact.transition.layer}, per-layer accuracy equal: {fast.acc == exact.acc}")


if __name__ == "__main__":
    main()
