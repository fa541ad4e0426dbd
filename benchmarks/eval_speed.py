"""Wall time of drtframe eval against lm-evaluation-harness 0.4.13 on the same items, side by side.

Runs both on the same model and the same first N items of a task, alternating them for `--rounds`
rounds so that machine noise hits both, and prints the best time of each and their ratio. Also
times drtframe in bfloat16 and reports what it does to accuracy.

    pip install -e ".[bench]"
    python benchmarks/eval_speed.py --data-dir ../shared/data/mc
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lmeval_parity import local_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--task", default="arc_easy")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lmeval-batch-size", type=int, default=1, help="lm-eval's own default is 1")
    args = parser.parse_args()

    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from drtframe.evaluation.runner import evaluate, resolve_benchmark
    from drtframe.models.aliases import ALIASES, ensure_alias
    from drtframe.models.loading import ModelSpec, load_model
    from drtframe.plugins import load_registry

    registry = load_registry()
    model_dir = ensure_alias(ALIASES[args.model]) if args.model in ALIASES else Path(args.model)
    benchmark = resolve_benchmark(registry, args.task, args.split)
    ours = load_model(ModelSpec(str(model_dir), device="cpu", dtype="float32"), registry)
    ours_bf16 = load_model(ModelSpec(str(model_dir), device="cpu", dtype="bfloat16"), registry)
    theirs = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=args.lmeval_batch_size)
    print(f"{args.task}, first {args.limit} items of {args.split}, {torch.get_num_threads()} threads, "
          f"lm-eval batch size {args.lmeval_batch_size}")

    def run_ours(handle):
        start = time.perf_counter()
        result = evaluate(handle, benchmark, None, args.limit, args.data_dir)
        return time.perf_counter() - start, result.score.acc, result.score.acc_norm

    with tempfile.TemporaryDirectory() as tmp:
        local_task(args.task, args.split, benchmark, args.data_dir, Path(tmp))
        manager = TaskManager(include_path=tmp)

        def run_theirs():
            start = time.perf_counter()
            out = simple_evaluate(model=theirs, tasks=[args.task], num_fewshot=0, limit=args.limit,
                                  task_manager=manager, bootstrap_iters=0)
            metrics = out["results"][args.task]
            return time.perf_counter() - start, metrics["acc,none"], metrics.get("acc_norm,none")

        times = {"lm-eval": [], "drtframe": [], "drtframe bf16": []}
        accs = {}
        for round_ in range(args.rounds):
            for name, run in (("lm-eval", run_theirs), ("drtframe", lambda: run_ours(ours)),
                              ("drtframe bf16", lambda: run_ours(ours_bf16))):
                seconds, acc, acc_norm = run()
                times[name].append(seconds)
                accs[name] = (acc, acc_norm)
                print(f"  round {round_ + 1}: {name:14} {seconds:7.1f} s  acc {acc:.4f}  acc_norm {acc_norm:.4f}")
    best = {name: min(values) for name, values in times.items()}
    print(f"best of {args.rounds}: lm-eval {best['lm-eval']:.1f} s, drtframe {best['drtframe']:.1f} s, "
          f"drtframe bf16 {best['drtframe bf16']:.1f} s")
    print(f"speed-up over lm-eval: float32 {best['lm-eval'] / best['drtframe']:.2f}x, "
          f"bfloat16 {best['lm-eval'] / best['drtframe bf16']:.2f}x")
    print(f"bfloat16 vs float32 accuracy: acc {accs['drtframe bf16'][0] - accs['drtframe'][0]:+.4f}, "
          f"acc_norm {accs['drtframe bf16'][1] - accs['drtframe'][1]:+.4f}")


if __name__ == "__main__":
    main()
