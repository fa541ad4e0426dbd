"""Evaluation results as JSON (per benchmark and per item) and as rich tables (MC, perplexity)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from .runner import BenchmarkResult


def _flatten(result: BenchmarkResult) -> list[BenchmarkResult]:
    """A group first, then its members, depth first."""
    return [result] + [r for m in result.members for r in _flatten(m)]


def to_json(results: list[BenchmarkResult], meta: dict) -> dict:
    out = {"config": meta, "results": {}}
    for result in (r for top in results for r in _flatten(top)):
        s = result.score
        entry = {"format": result.format, "acc": s.acc, "acc_stderr": s.acc_stderr, "acc_norm": s.acc_norm,
                 "acc_norm_stderr": s.acc_norm_stderr, "n": s.n}
        if result.members:
            entry["members"] = [m.name for m in result.members]
        else:
            entry["items"] = [{"index": r.index, "gold": r.gold, "loglikelihoods": list(r.loglikelihoods),
                               "pred": r.pred, "pred_norm": r.pred_norm} for r in result.items]
        out["results"][result.name] = entry
    return out


def write_json(path: Path, payload: dict) -> None:
    """Write through a temporary file so an interrupted run never leaves half a JSON file."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)


def table(results: list[BenchmarkResult], title: str) -> Table:
    t = Table(title=title)
    for column, justify in (("benchmark", "left"), ("format", "left"), ("n", "right"),
                            ("acc", "right"), ("± stderr", "right"), ("acc_norm", "right"), ("± stderr ", "right")):
        t.add_column(column, justify=justify)
    for top in results:
        rows = [top] + [m for m in top.members]  # a group shows its categories, not all 57 subjects
        for depth, r in enumerate(rows):
            s = r.score
            name = r.name if depth == 0 else f"  {r.name}"
            t.add_row(name, r.format, str(s.n), f"{s.acc:.4f}", f"{s.acc_stderr:.4f}",
                      f"{s.acc_norm:.4f}", f"{s.acc_norm_stderr:.4f}")
    return t


def text_table(results: list[tuple[str, str, dict]], title: str) -> Table:
    """Perplexity results, each (benchmark, unit, `text_result`): its primary perplexity (lower is
    better) and every other metric it reports."""
    t = Table(title=title, caption="perplexity: lower is better")
    for column, justify in (("benchmark", "left"), ("n", "right"), ("perplexity", "left"), ("value", "right"),
                            ("other metrics", "left")):
        t.add_column(column, justify=justify)
    for name, unit, result in results:
        size = f"{result['n']} {unit}{'s' if result['n'] != 1 else ''}"
        if "seq_len" in result:
            size += f" of {result['seq_len']} tokens"
        metrics = result["metrics"]
        others = ", ".join(f"{key} {value:.4f}" + (f" ± {metrics[key + '_stderr']:.4f}" if key + "_stderr" in metrics
                                                   else "")
                           for key, value in metrics.items() if key != result["metric"] and not key.endswith("_stderr"))
        t.add_row(name, size, result["metric"], f"{result['ppl']:.4f}", others)
    return t
