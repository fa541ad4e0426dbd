"""Evaluate a model on benchmarks: rows -> items -> log-likelihoods -> predictions and scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ..errors import DrtframeError
from ..models.handle import ModelHandle
from ..plugin_system.manager import Registry
from .benchmark import FORMATS, Benchmark
from .data import load_rows
from .items import MCItem
from .loglikelihood import loglikelihoods
from .metrics import Score, aggregate, score


@dataclass(frozen=True)
class ItemResult:
    index: int
    gold: int
    loglikelihoods: tuple[float, ...]
    pred: int
    pred_norm: int


@dataclass(frozen=True)
class BenchmarkResult:
    """Scores of one benchmark; a group (mmlu) also holds its members' results."""

    name: str
    format: str
    score: Score
    items: tuple[ItemResult, ...] = ()
    members: tuple[BenchmarkResult, ...] = ()


def resolve_benchmark(registry: Registry, name: str, split: str | None = None) -> Benchmark:
    """A registered benchmark by name, or a YAML task file; `split` replaces the evaluated split (a benchmark
    whose rows come from its `data_file` has only the split it names)."""
    if name.endswith((".yaml", ".yml")):
        from .yaml_task import load_yaml_benchmark

        benchmark = load_yaml_benchmark(Path(name), split)
    else:
        benchmark = registry.get("benchmark", name)()
        if split and benchmark.data_file is not None and split != benchmark.split:
            raise DrtframeError(f"{name} reads its {benchmark.split} items from {benchmark.data_file} and has no "
                                f"{split!r} split")
        if split:
            benchmark.split = split
    return benchmark


def load_items(benchmark: Benchmark, fmt: str | None, limit: int | None, data_dir: Path | None) -> list[MCItem]:
    """The first `limit` items of the benchmark in `fmt`; malformed rows name file, line and field."""
    if fmt is not None and fmt not in FORMATS:
        raise DrtframeError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    rows = load_rows(benchmark, data_dir, limit)
    items = []
    for index, row in enumerate(rows):
        try:
            doc = benchmark.process_docs([row.doc])[0]
            items.append(benchmark.item(doc, index, fmt))
        except DrtframeError:
            raise
        except (KeyError, jinja2.UndefinedError) as exc:
            raise DrtframeError(f"{row.where}: malformed row, missing field {_field(exc)}") from None
        except (ValueError, IndexError, TypeError, AttributeError, SyntaxError) as exc:
            raise DrtframeError(f"{row.where}: malformed row ({exc})") from None
    return items


def _field(exc: Exception) -> str:
    """The missing field's name from a KeyError, or jinja's own words ("'x' is undefined")."""
    return repr(exc.args[0]) if isinstance(exc, KeyError) else f"({exc.message})"


def predictions(item: MCItem, lls: list[float]) -> ItemResult:
    """acc takes the highest log-likelihood; acc_norm divides by the choice's length in characters."""
    pred = max(range(len(lls)), key=lambda i: lls[i])
    pred_norm = max(range(len(lls)), key=lambda i: lls[i] / item.lengths[i])
    return ItemResult(item.index, item.gold, tuple(lls), pred, pred_norm)


def benchmark_result(name: str, fmt: str, items: list[MCItem], lls: list[list[float]]) -> BenchmarkResult:
    """Predictions and scores of `items` from their per-choice log-likelihoods."""
    results = [predictions(item, item_lls) for item, item_lls in zip(items, lls)]
    return BenchmarkResult(name, fmt, score([r.pred == r.gold for r in results],
                                            [r.pred_norm == r.gold for r in results]), tuple(results))


def evaluate_items(handle: ModelHandle, name: str, fmt: str, items: list[MCItem],
                   progress: Callable[[int], None] | None = None, budget: int = 2048) -> BenchmarkResult:
    return benchmark_result(name, fmt, items, loglikelihoods(handle, items, budget, progress))


def evaluate(handle: ModelHandle, benchmark: Benchmark, fmt: str | None, limit: int | None, data_dir: Path | None,
             progress: Callable[[int], None] | None = None,
             on_total: Callable[[int], None] | None = None) -> BenchmarkResult:
    """Evaluate one benchmark; a group is evaluated member by member and aggregated by size.

    `on_total(n)` is told how many items will be scored before scoring starts.
    """
    fmt = fmt or benchmark.native_format
    members = benchmark.members()
    if not members:
        items = load_items(benchmark, fmt, limit, data_dir)
        if on_total:
            on_total(len(items))
        return evaluate_items(handle, benchmark.name, fmt, items, progress)
    loaded = [(m, load_items(m, fmt, limit, data_dir)) for m in members]  # limit applies per member, as in lm-eval
    if on_total:
        on_total(sum(len(items) for _, items in loaded))
    by_category: dict[str, list[BenchmarkResult]] = {}
    for member, items in loaded:
        by_category.setdefault(member.category, []).append(evaluate_items(handle, member.name, fmt, items, progress))
    groups = tuple(BenchmarkResult(f"{benchmark.name}_{cat}", fmt, aggregate([r.score for r in results]),
                                   members=tuple(results)) for cat, results in sorted(by_category.items()))
    # lm-eval 0.4.13 aggregates a group over its leaf tasks, not over its subgroups' results
    leaves = [r.score for results in by_category.values() for r in results]
    return BenchmarkResult(benchmark.name, fmt, aggregate(leaves), members=groups)
