"""The two kinds of work in a grid, each keyed and stored on its own: an evaluation cell (one removed
set on one benchmark: multiple choice, or a perplexity benchmark) and a decision profile (one
removed set on the guard items)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..evaluation.data import Row, load_rows
from ..evaluation.items import MCItem
from ..evaluation.loglikelihood import model_max_length
from ..evaluation.metrics import aggregate
from ..evaluation.runner import benchmark_result, load_items, resolve_benchmark
from ..evaluation.text_benchmark import TextBenchmark, TextItem, text_result
from ..models.handle import ModelHandle
from ..plugin_system.options import build_options
from ..probing.profile import decision_profile
from ..probing.report import profile_entry
from .store import content_key


@dataclass(frozen=True)
class BenchmarkItems:
    """The evaluated items of one benchmark; a group (mmlu) keeps its members' items apart."""

    name: str
    split: str
    format: str
    members: tuple[tuple[str, tuple[MCItem, ...]], ...]

    @property
    def items(self) -> list[MCItem]:
        return [item for _, items in self.members for item in items]

    @property
    def chance(self) -> float:
        """Expected accuracy of a uniform random guess."""
        return sum(1 / item.num_choices for item in self.items) / len(self.items)

    def identity(self) -> dict:
        """The task definition as it enters a cell's key: the exact items, not the task's name."""
        return {"benchmark": self.name, "split": self.split, "format": self.format,
                "items": content_key({"items": [[name, [[i.index, i.contexts, i.continuations, i.gold, i.lengths]
                                                        for i in items]] for name, items in self.members]})}


@dataclass(frozen=True)
class TextBenchmarkItems:
    """The rows of a perplexity benchmark; its items (documents, chunks, passages) are cut from them with
    the model's tokenizer, so they exist only once a model is loaded (`items_for`)."""

    name: str
    split: str
    benchmark: TextBenchmark
    rows: tuple[Row, ...]
    limit: int | None
    format = "perplexity"

    def items_for(self, handle: ModelHandle) -> list[TextItem]:
        return self.benchmark.items(self.rows, handle.tokenizer, model_max_length(handle.model), self.limit)

    def identity(self) -> dict:
        """What determines the items given the model: the rows' text, the limit, the benchmark's options."""
        return {"benchmark": self.name, "split": self.split, "format": self.format, "limit": self.limit,
                "options": self.benchmark.options.model_dump(), "items": content_key({"rows": [r.doc for r in self.rows]})}

    def cell(self, items: list[TextItem], scores: list[torch.Tensor]) -> dict:
        return text_result(self.benchmark, items, scores)


def load_benchmark(registry, name: str, split: str | None, fmt: str | None, limit: int | None,
                   data_dir: Path | None, options: Mapping[str, str] | None = None) -> BenchmarkItems | TextBenchmarkItems:
    """Resolve and load a benchmark's items, or a perplexity benchmark's rows, with its `options` (a split
    the data lacks fails here, before the model loads)."""
    benchmark = resolve_benchmark(registry, name, split)
    if options:
        benchmark.options = build_options(type(benchmark).Options, options, name)
    if isinstance(benchmark, TextBenchmark):
        rows = tuple(load_rows(benchmark, data_dir, benchmark.row_limit(limit)))
        return TextBenchmarkItems(benchmark.name, benchmark.split, benchmark, rows, limit)
    fmt = fmt or benchmark.native_format
    leaves = benchmark.members() or [benchmark]  # the limit applies per member, as in lm-eval
    return BenchmarkItems(benchmark.name, benchmark.split, fmt,
                          tuple((leaf.name, tuple(load_items(leaf, fmt, limit, data_dir))) for leaf in leaves))


def cell_from_scores(bench: BenchmarkItems, scores: list[torch.Tensor]) -> dict:
    """acc, acc_norm and their standard errors (a group: size-weighted over members, as lm-eval), plus
    every item's per-choice log-likelihoods."""
    lls = [s[:, 0].tolist() for s in scores]
    results, start = [], 0
    for name, items in bench.members:
        results.append(benchmark_result(name, bench.format, list(items), lls[start:start + len(items)]))
        start += len(items)
    s = results[0].score if len(results) == 1 else aggregate([r.score for r in results])
    return {"n": s.n, "acc": s.acc, "acc_stderr": s.acc_stderr, "acc_norm": s.acc_norm,
            "acc_norm_stderr": s.acc_norm_stderr, "loglikelihoods": lls}


def profile_from_scores(scores: list[torch.Tensor], items: list[MCItem], kept: tuple[int, ...]) -> dict:
    """The decision profile's transition, phases and per-layer lens accuracy, in original numbering."""
    profile = decision_profile(scores, [item.gold for item in items])
    return {**profile_entry(profile, kept), "kept": list(kept), "acc": list(profile.acc),
            "decision_margin": list(profile.decision_margin), "final_acc": profile.acc[-1]}
