"""What block_influence and angular_distance cost over a plain forward pass on the same tokens.

Both scorers reduce the residual stream through hooks during one forward pass per batch (angular
distance for every run length n at once). This times them against the model's own forward on the
same calibration batches, best of a few repeats. Target: at most 1.2x the plain forward.

    python benchmarks/scoring_cost.py --calibration wiki.test.raw [--model smollm2-135m] [--n-samples 16]
"""

from __future__ import annotations

import argparse
import time

import torch

from drtframe.forward.hidden_states import run_blocks
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugin_system.manager import load_registry
from drtframe.scoring.calibration import CalibrationSpec, calibration_tokens
from drtframe.scoring.methods import resolve_method
from drtframe.scoring.scorer import ScoringContext
from drtframe_plugins.similarity import angular_distances


def best_times(works: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each piece of work; rounds interleave them, so load drifts hit all alike."""
    best = dict.fromkeys(works, float("inf"))
    for round_ in range(repeats + 1):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            if round_:  # round 0 only warms up
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--calibration", default="wikitext2")
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    registry = load_registry()
    handle = load_model(ModelSpec(args.model), registry)
    tokens = calibration_tokens(CalibrationSpec(args.calibration, args.n_samples, args.seq_len), handle.tokenizer)
    ctx = ScoringContext(handle, tokens, args.batch_size)

    @torch.inference_mode()
    def plain_forward():
        for ids in ctx.batches():
            handle.model(input_ids=ids, use_cache=False)

    @torch.inference_mode()
    def blocks_only():
        for ids in ctx.batches():
            run_blocks(handle, ids)

    block_influence = resolve_method(registry, "block_influence").scorer
    timings = best_times({
        "plain forward (model(ids), with LM head)": plain_forward,
        "forward without LM head (embeddings + blocks)": blocks_only,
        "block_influence": lambda: block_influence.score(ctx),
        "angular_distance (every n)": lambda: angular_distances(ctx),
    }, args.repeats)
    plain = timings["plain forward (model(ids), with LM head)"]
    headless = timings["forward without LM head (embeddings + blocks)"]
    print(f"{args.model}: {args.n_samples} x {args.seq_len} tokens, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}")
    for name, seconds in timings.items():
        print(f"  {name:48s} {seconds:8.3f} s  {seconds / plain:5.2f}x plain  {seconds / headless:5.2f}x headless")


if __name__ == "__main__":
    main()
