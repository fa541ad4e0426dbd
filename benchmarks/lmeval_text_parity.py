"""drtframe's perplexity benchmarks against lm-evaluation-harness 0.4.13 on the same model and rows.

lm-eval runs its own wikitext and lambada_openai task configs (read from its YAML, so its detokenizer
and process_results callables are its own), only the data source swapped for local JSONL files
(`dataset_path: json`). wikitext runs twice: at the model's context (8,192 tokens for SmolLM2, one
window per document here) and at a context of 256 tokens (HFLM's max_length; drtframe gets the same
by lowering the model config's max_position_embeddings), so that documents span many windows.
Prints, per task, the largest per-item log-likelihood difference, greedy agreement and both metrics;
--write-slice stores lm-eval's per-item output for tests/test_perplexity_parity.py.

    pip install -e ".[bench]"
    python benchmarks/lmeval_text_parity.py --write-slice tests/data/lmeval_text_slice.json

Rows: tests/data/lm (three WikiText-2 test documents) and the packaged LAMBADA rows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# name -> (lm-eval task, drtframe benchmark, data dir, items, HFLM max_length (None: the model's))
RUNS = {
    "wikitext": ("wikitext", "wikitext", "tests/data/lm", None, None),
    "wikitext@256": ("wikitext", "wikitext", "tests/data/lm", None, 256),
    "lambada_openai": ("lambada_openai", "lambada_openai", "drtframe/samples/eval", 50, None),
}


def lmeval_config(task: str, benchmark, data_dir: Path) -> dict:
    """lm-eval's own config of `task`, reading `benchmark`'s split from the local JSONL file."""
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(Path(lm_eval.__file__).parent / "tasks" / task.split("_")[0] / f"{task}.yaml")
    path = data_dir / benchmark.dataset_path / (benchmark.dataset_name or "default") / f"{benchmark.split}.jsonl"
    config.update(task=f"{task}_local", dataset_path="json", dataset_name=None,
                  dataset_kwargs={"data_files": {benchmark.split: str(path)}}, training_split=None,
                  validation_split=None, test_split=benchmark.split)
    config.pop("tag", None)
    return config


def run_lmeval(model_dir: Path, task: str, benchmark, data_dir: Path, limit, max_length):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=1, max_length=max_length)
    start = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=[lmeval_config(task, benchmark, data_dir)], num_fewshot=0, limit=limit,
                          log_samples=True, bootstrap_iters=0)
    seconds = time.perf_counter() - start
    samples = sorted(out["samples"][f"{task}_local"], key=lambda s: s["doc_id"])
    metrics = {key.split(",")[0]: value for key, value in out["results"][f"{task}_local"].items()
               if key.endswith(",none") and "stderr" not in key}
    return samples, metrics, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--write-slice", type=Path, help="store lm-eval's per-item output here")
    args = parser.parse_args()

    from drtframe.evaluation.runner import resolve_benchmark
    from drtframe.evaluation.text_scores import load_text_items, text_scores
    from drtframe.evaluation.text_benchmark import text_result
    from drtframe.models.aliases import ALIASES, ensure_alias
    from drtframe.models.loading import ModelSpec, load_model
    from drtframe.plugin_system.manager import load_registry

    registry = load_registry()
    model_dir = ensure_alias(ALIASES[args.model]) if args.model in ALIASES else Path(args.model)
    handle = load_model(ModelSpec(str(model_dir), device="cpu", dtype="float32"), registry)
    context = handle.model.config.max_position_embeddings
    print(f"{'run':15} {'items':>5} {'max |dLL|':>10} {'max rel':>9} {'greedy':>7} {'metric':>16} "
          f"{'lm-eval':>12} {'drtframe':>12} {'lm-eval s':>9} {'drtframe s':>10}")
    out = {}
    for run, (task, name, data, limit, max_length) in RUNS.items():
        benchmark = resolve_benchmark(registry, name)
        data_dir = ROOT / data
        samples, theirs, their_seconds = run_lmeval(model_dir, task, benchmark, data_dir, limit, max_length)
        handle.model.config.max_position_embeddings = max_length or context
        start = time.perf_counter()
        items = load_text_items(handle, benchmark, limit, data_dir)
        ours = text_result(benchmark, items, text_scores(handle, items))
        our_seconds = time.perf_counter() - start
        handle.model.config.max_position_embeddings = context
        lls = [float(s["filtered_resps"][0] if task == "wikitext" else s["filtered_resps"][0][0]) for s in samples]
        greedy = [bool(s["filtered_resps"][0][1]) for s in samples] if task != "wikitext" else None
        assert len(lls) == len(ours["units"]), run
        diffs = [abs(a - b) for a, (b, _) in zip(lls, ours["units"])]
        rel = max(d / abs(a) for d, a in zip(diffs, lls))
        same = f"{sum(int(g) == c for g, c in zip(greedy, ours['correct']))}" if greedy else "-"
        metric = ours["metric"]
        print(f"{run:15} {len(lls):5d} {max(diffs):10.2e} {rel:9.1e} {same:>7} {metric:>16} {theirs[metric]:12.6f} "
              f"{ours['ppl']:12.6f} {their_seconds:9.1f} {our_seconds:10.1f}")
        for key, value in theirs.items():
            print(f"{'':15} {key:>40}: lm-eval {value!r}, drtframe {ours['metrics'].get(key)!r}")
        out[run] = {"benchmark": name, "data_dir": data, "limit": limit, "max_length": max_length,
                    "loglikelihoods": lls, **({"is_greedy": greedy} if greedy else {}), "metrics": theirs}
    if args.write_slice:
        import lm_eval

        args.write_slice.write_text(json.dumps({
            "lm_eval_version": getattr(lm_eval, "__version__", "0.4.13"),
            "command": f"python benchmarks/lmeval_text_parity.py --model {args.model} --write-slice {args.write_slice}",
            "model": args.model, "dtype": "float32", "runs": out}, indent=1) + "\n")
        print(f"slice written to {args.write_slice}")


if __name__ == "__main__":
    main()
