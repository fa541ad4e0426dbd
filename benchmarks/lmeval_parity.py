"""drtframe eval against lm-evaluation-harness 0.4.13 on the same model and items: parity and speed.

Both run in this process on the same model directory and the same local rows (lm-eval through its
own task configs, only the data source swapped for the local JSONL). Prints, per task, item-by-item
prediction agreement, the largest log-likelihood difference and both accuracies, then the wall
time of each on the first task and their ratio.

    pip install -e ".[bench]"
    python benchmarks/lmeval_parity.py --data-dir ../shared/data/mc
    python benchmarks/lmeval_parity.py --data-dir ../shared/data/mc --write-slice tests/data/lmeval_slice.json

Set OMP_NUM_THREADS to the number of idle cores for stable timings.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import yaml

DEFAULT_TASKS = "arc_easy:200:validation,piqa:200,hellaswag:100,winogrande:100,mmlu_anatomy:100"


def official_yaml(task: str) -> Path:
    """The lm-eval YAML that defines `task`."""
    import lm_eval

    root = Path(lm_eval.__file__).parent / "tasks"
    pattern = re.compile(rf'^"?task"?: "?{re.escape(task)}"?\s*$', re.MULTILINE)
    for path in sorted(root.rglob("*.yaml")):
        if pattern.search(path.read_text(errors="ignore")):
            return path
    raise SystemExit(f"lm-eval defines no task {task}")


def local_task(task: str, split: str, benchmark, data_dir: Path, out: Path) -> None:
    """An lm-eval task dir that includes the official config and reads the local JSONL instead."""
    source = official_yaml(task)
    folder = out / task
    folder.mkdir()
    for helper in source.parent.glob("*.py"):  # process_docs & co. resolve next to the including file
        shutil.copy(helper, folder)
    data = data_dir / benchmark.dataset_path / (benchmark.dataset_name or "default")
    files = {split: str(data / f"{split}.jsonl")}
    if (data / "dev.jsonl").exists():
        files["dev"] = str(data / "dev.jsonl")  # mmlu builds its (unused at 0-shot) fewshot sampler from dev
    spec = {"include": str(source), "task": task, "dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": files}, "training_split": None}
    if split != "test":
        spec["test_split"] = None
        spec["validation_split"] = split
    (folder / f"{task}.yaml").write_text(yaml.safe_dump(spec))


def run_lmeval(model_dir: Path, tasks, data_dir: Path, batch_size: int):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=batch_size)
    samples, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for task, limit, split, benchmark in tasks:
            local_task(task, split, benchmark, data_dir, Path(tmp))
        manager = TaskManager(include_path=tmp)
        for task, limit, split, benchmark in tasks:
            start = time.perf_counter()
            out = simple_evaluate(model=lm, tasks=[task], num_fewshot=0, limit=limit, log_samples=True,
                                  task_manager=manager, bootstrap_iters=0)
            seconds[task] = time.perf_counter() - start
            samples[task] = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    return samples, seconds


def run_drtframe(model_source: str, tasks, data_dir: Path):
    from drtframe.evaluation.runner import evaluate, resolve_benchmark
    from drtframe.models.loading import ModelSpec, load_model
    from drtframe.plugin_system.manager import load_registry

    registry = load_registry()
    handle = load_model(ModelSpec(model_source, device="cpu", dtype="float32"), registry)
    results, seconds = {}, {}
    for task, limit, split, _ in tasks:
        start = time.perf_counter()
        results[task] = evaluate(handle, resolve_benchmark(registry, task, split), None, limit, data_dir)
        seconds[task] = time.perf_counter() - start
    return results, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--tasks", default=DEFAULT_TASKS, help="task:limit[:split],...")
    parser.add_argument("--lmeval-batch-size", type=int, default=1, help="lm-eval's own default is 1")
    parser.add_argument("--write-slice", type=Path, help="store lm-eval's per-item log-likelihoods here")
    parser.add_argument("--slice-items", type=int, default=25)
    args = parser.parse_args()

    from drtframe.models.aliases import ALIASES, ensure_alias
    from drtframe.plugin_system.manager import load_registry

    registry = load_registry()
    model_dir = ensure_alias(ALIASES[args.model]) if args.model in ALIASES else Path(args.model)
    tasks = []
    for spec in args.tasks.split(","):
        task, limit, *split = spec.split(":")
        benchmark = registry.get("benchmark", task)()
        tasks.append((task, int(limit), split[0] if split else benchmark.split, benchmark))

    ours, our_seconds = run_drtframe(str(model_dir), tasks, args.data_dir)
    theirs, their_seconds = run_lmeval(model_dir, tasks, args.data_dir, args.lmeval_batch_size)

    print(f"{'task':14} {'items':>5} {'same pred':>9} {'same norm':>9} {'max |dLL|':>10} "
          f"{'lm-eval acc':>11} {'drtframe acc':>12} {'lm-eval s':>9} {'drtframe s':>10} {'speed-up':>8}")
    slice_out = {}
    for task, limit, split, _ in tasks:
        items, samples = ours[task].items, theirs[task]
        assert [s["doc_id"] for s in samples] == [i.index for i in items], f"{task}: different items"
        ref = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
        same = sum(int(max(range(len(r)), key=r.__getitem__) == i.pred) for r, i in zip(ref, items))
        normed = [(s["acc_norm"], float(i.pred_norm == i.gold)) for s, i in zip(samples, items) if "acc_norm" in s]
        same_norm = f"{sum(a == b for a, b in normed)}" if normed else "-"
        worst = max(abs(a - b) for r, i in zip(ref, items) for a, b in zip(r, i.loglikelihoods))
        their_acc = sum(s["acc"] for s in samples) / len(samples)
        print(f"{task:14} {len(items):5d} {same:9d} {same_norm:>9} {worst:10.2e} {their_acc:11.4f} "
              f"{ours[task].score.acc:12.4f} {their_seconds[task]:9.1f} {our_seconds[task]:10.1f} "
              f"{their_seconds[task] / our_seconds[task]:7.2f}x")
        slice_out[task] = {"split": split, "loglikelihoods": ref[:args.slice_items]}
    total_theirs, total_ours = sum(their_seconds.values()), sum(our_seconds.values())
    print(f"total wall time: lm-eval {total_theirs:.1f} s (batch size {args.lmeval_batch_size}), "
          f"drtframe {total_ours:.1f} s, speed-up {total_theirs / total_ours:.2f}x")
    if args.write_slice:
        import lm_eval

        args.write_slice.write_text(json.dumps({
            "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.13",
            "command": f"python benchmarks/lmeval_parity.py --data-dir <shared/data/mc> --tasks {args.tasks} "
                       f"--lmeval-batch-size {args.lmeval_batch_size} --write-slice {args.write_slice}",
            "model": args.model, "dtype": "float32", "tasks": slice_out}, indent=1) + "\n")
        print(f"slice written to {args.write_slice}")


if __name__ == "__main__":
    main()
