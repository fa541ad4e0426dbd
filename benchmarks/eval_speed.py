"""Speed of `drtframe eval` against lm-evaluation-harness 0.4.13, side by side in one run.

Prints, for the first N items of a task (default: the 200 ARC-Easy validation rows drtframe ships):
- whole commands, each a fresh process: `drtframe eval` against `lm_eval` at batch size 32 (its
  fastest here; 8 and 64 are slower), alternated for `--rounds` rounds, best of each and the ratio;
- start-up: a fresh process importing drtframe, loading the converted model and finishing its first
  forward pass;
- the evaluation itself in-process, against the float32 GEMM floor (the work's matrix FLOPs over the
  machine's measured float32 matrix-multiply rate);
- `--dtype bfloat16`: time and accuracy against float32 on two benchmarks.

    pip install -e ".[bench]"
    python benchmarks/eval_speed.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lmeval_parity import local_task

START_UP = """
import time, sys
start = float(sys.argv[1])
import torch
from drtframe.models.loading import ModelSpec, load_model
from drtframe.plugin_system.manager import load_registry
handle = load_model(ModelSpec(sys.argv[2], device="cpu", dtype="float32"), load_registry())
with torch.inference_mode():
    handle.model(torch.tensor([[1, 2, 3]]))
print(time.time() - start)
"""


def timed_command(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def gemm_rate(dtype) -> float:
    """FLOP/s of a float matrix product shaped like the model's (tokens x 576 x 1536)."""
    import torch

    a, b = torch.randn(2048, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(50):
        a @ b
    return 50 * 2 * 2048 * 576 * 1536 / (time.perf_counter() - start)


def work_flop(handle, items) -> float:
    """Matrix FLOPs of scoring `items` without padding: every context and continuation token through
    every block, plus the head at each distinct predicting position."""
    from drtframe.evaluation.loglikelihood import units_for

    units = units_for(handle, items)
    tokens, reads = sum(len(u) for u in units), sum(u.reads() for u in units)
    head = handle.model.get_output_embeddings().weight.numel()
    blocks = sum(p.numel() for p in handle.layers.parameters())
    return 2 * blocks * tokens + 2 * head * reads


def main() -> None:
    from drtframe.comparison.request import SAMPLE_EVAL_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data-dir", type=Path, default=SAMPLE_EVAL_DIR)
    parser.add_argument("--task", default="arc_easy")
    parser.add_argument("--second-task", default="piqa", help="the other benchmark of the bfloat16 comparison")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lmeval-batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from drtframe.evaluation.runner import evaluate, load_items, resolve_benchmark
    from drtframe.models.aliases import ALIASES, ensure_alias
    from drtframe.models.loading import ModelSpec, load_model
    from drtframe.plugin_system.manager import load_registry

    registry = load_registry()
    model_dir = ensure_alias(ALIASES[args.model]) if args.model in ALIASES else Path(args.model)
    benchmark = resolve_benchmark(registry, args.task, args.split)
    print(f"{args.task}, first {args.limit} items of {args.split}, {torch.get_num_threads()} threads, "
          f"lm-eval batch size {args.lmeval_batch_size}")
    bin_dir = Path(sys.executable).parent
    ours = [str(bin_dir / "drtframe"), "eval", "-m", str(model_dir), "-b", args.task, "--split", args.split,
            "--data-dir", str(args.data_dir), "--limit", str(args.limit), "--device", "cpu", "--dtype", "float32"]
    with tempfile.TemporaryDirectory() as tmp:
        local_task(args.task, args.split, benchmark, args.data_dir, Path(tmp))
        theirs = [str(bin_dir / "lm_eval"), "--model", "hf", "--model_args",
                  f"pretrained={model_dir},dtype=float32", "--tasks", args.task, "--include_path", tmp,
                  "--limit", str(args.limit), "--batch_size", str(args.lmeval_batch_size), "--device", "cpu"]
        times = {"lm-eval": [], "drtframe": []}
        for round_ in range(args.rounds):
            for name, command in (("lm-eval", theirs), ("drtframe", ours)):
                times[name].append(timed_command(command))
                print(f"  round {round_ + 1}: {name:9} whole command {times[name][-1]:6.1f} s")
    best = {name: min(values) for name, values in times.items()}
    print(f"whole command, best of {args.rounds}: lm-eval {best['lm-eval']:.1f} s, drtframe {best['drtframe']:.1f} s: "
          f"{best['lm-eval'] / best['drtframe']:.2f}x")

    starts = [float(subprocess.run([sys.executable, "-c", START_UP, repr(time.time()), str(model_dir)],
                                   check=True, capture_output=True, text=True).stdout.split()[-1])
              for _ in range(args.rounds)]
    print(f"start-up to the first forward (fresh process, converted model): best {min(starts):.2f} s")

    handles = {dtype: load_model(ModelSpec(str(model_dir), device="cpu", dtype=dtype), registry)
               for dtype in ("float32", "bfloat16")}
    items = load_items(benchmark, None, args.limit, args.data_dir)
    floor = work_flop(handles["float32"], items) / gemm_rate(torch.float32)
    results = {}
    for task in (args.task, args.second_task):
        bench = resolve_benchmark(registry, task, args.split)
        for dtype, handle in handles.items():
            seconds = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                result = evaluate(handle, bench, None, args.limit, args.data_dir)
                seconds.append(time.perf_counter() - start)
            results[task, dtype] = (min(seconds), result.score)
    evaluation = results[args.task, "float32"][0]
    print(f"evaluation in-process, float32: {evaluation:.1f} s; GEMM floor {floor:.1f} s: {evaluation / floor:.2f}x "
          f"the floor")
    for task in (args.task, args.second_task):
        (t32, s32), (t16, s16) = results[task, "float32"], results[task, "bfloat16"]
        print(f"{task:10} float32 {t32:5.1f} s acc {s32.acc:.4f} acc_norm {s32.acc_norm:.4f} | bfloat16 {t16:5.1f} s "
              f"({t32 / t16:.2f}x faster) acc {s16.acc - s32.acc:+.4f} acc_norm {s16.acc_norm - s32.acc_norm:+.4f} "
              f"(n={s32.n}, stderr {s32.acc_stderr:.3f})")


if __name__ == "__main__":
    main()
