"""SLEB (perplexity@iterative) at several calibration sizes: wall time, order, and how close each round was.

The reference is the documented default, 64 x 256 tokens of `wikitext2-sample`; smaller sizes are
candidates for a cheaper default, acceptable only where they give the reference's order. Each
round's scores are kept, so the printout shows the gap between the block removed and the runner-up
(a round decided by a hair at one size is the one a smaller size is likely to flip; a runner-up that
left the race early has the score of the batches it ran, so a wide gap there only says it was
clearly behind). Results go to a JSON file as each size finishes, and sizes already in it are not
run again (the slow path took 85 minutes here).

    python benchmarks/sleb_calibration.py --sizes 64x256 8x128 16x128 [--model smollm2-135m] [-k 8]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugin_system.manager import load_registry
from drtframe.scoring.calibration import WIKITEXT2_SAMPLE, CalibrationSpec, calibration_tokens
from drtframe.scoring.methods import resolve_method
from drtframe.scoring.scorer import ScoringContext


def run_size(registry, handle, n_samples: int, seq_len: int, k: int, batch_size: int, options: dict) -> dict:
    """Plan K removals at one size; the order, the wall time and every round's scores."""
    tokens = calibration_tokens(CalibrationSpec(WIKITEXT2_SAMPLE, n_samples, seq_len), handle.tokenizer)
    method = resolve_method(registry, "perplexity@iterative", options)
    rounds: list[dict] = []
    score = method.scorer.score

    def kept_score(ctx):
        scores = score(ctx)
        rounds.append(dict(zip(ctx.handle.kept, scores)))
        return scores

    method.scorer.score = kept_score
    start = time.perf_counter()
    plan = method.schedule.plan(method.scorer, ScoringContext(handle, tokens, batch_size), k)
    return {"order": list(plan.order), "seconds": time.perf_counter() - start,
            "rounds": [{str(layer): s for layer, s in r.items()} for r in rounds]}


def gaps(result: dict) -> list[float]:
    """Per round: the runner-up's score minus the removed block's score."""
    out = []
    for scores in result["rounds"]:
        low = sorted(scores.values())
        out.append(low[1] - low[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sizes", nargs="+", default=["64x256", "8x128"], help="n_samples x seq_len")
    parser.add_argument("-k", "--remove", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("-o", "--option", action="append", default=[], help="scorer option key=value")
    parser.add_argument("--results", type=Path, default=Path("sleb_calibration.json"))
    args = parser.parse_args()

    options = dict(o.split("=", 1) for o in args.option)
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    registry = load_registry()
    handle = load_model(ModelSpec(args.model), registry)
    for size in args.sizes:
        key = f"{args.model} {size} k={args.remove} {json.dumps(options, sort_keys=True)}"
        if key not in results:
            n_samples, seq_len = (int(x) for x in size.split("x"))
            results[key] = run_size(registry, handle, n_samples, seq_len, args.remove, args.batch_size, options)
            args.results.write_text(json.dumps(results, indent=1))
        r = results[key]
        print(f"{key}: {r['seconds']:7.1f} s  order {r['order']}  "
              f"gaps {' '.join(f'{g:.4f}' for g in gaps(r))}", flush=True)


if __name__ == "__main__":
    main()
