"""Cost of probing every layer through the logit lens against a plain evaluation of the same items.

Both use the shared-context engine on the same items; the probe also keeps every layer's hidden
states at the predicting positions and projects them. Alternates the two for `--rounds` rounds and
prints the best times and their ratio (target: probe at most 2.5x eval).

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
    from drtframe.plugins import load_registry
    from drtframe.probing.lens import layer_scores

    registry = load_registry()
    handle = load_model(ModelSpec(args.model, device="cpu", dtype="float32"), registry)
    for spec in args.tasks.split(","):
        task, split = spec.split(":")
        items = load_items(resolve_benchmark(registry, task, split), None, args.limit, args.data_dir)
        best = {"eval": float("inf"), "probe": float("inf")}
        for _ in range(args.rounds):
            for name, run in (("eval", loglikelihoods), ("probe", layer_scores)):
                start = time.perf_counter()
                run(handle, items)
                best[name] = min(best[name], time.perf_counter() - start)
        print(f"{task:14} {len(items)} items: eval {best['eval']:.1f} s, probe (all {handle.num_layers} layers) "
              f"{best['probe']:.1f} s, ratio {best['probe'] / best['eval']:.2f}x")


if __name__ == "__main__":
    main()
