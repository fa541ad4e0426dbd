"""The outcome of a grid as data: what every method removed, every cell's scores, every variant's
decision profile. The CLI only renders it; `results.json` and `results.csv` are written from it.

Retention is a cell's acc over the dense model's acc on the same benchmark (acc, not acc_norm;
per benchmark, a ratio of accuracies); a method's mean retention is the mean of those ratios. A
perplexity cell's `ppl_ratio` is its perplexity over the dense model's. What the differences are
worth (paired intervals, McNemar, the best method per K, answers flipped) is `evidence`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from .evidence import Key, cell_evidence, primary
from .grid import GUARD
from .request import NO_HEALER, CompareRequest, Variant
from .sequences import MethodOutcome

CSV_COLUMNS = ("model", "method", "k", "healer", "removed_layers", "benchmark", "split", "n", "acc", "acc_stderr",
               "acc_norm", "acc_norm_stderr", "retention", "ppl_metric", "ppl", "ppl_ratio", "flips",
               "correct_to_wrong", "wrong_to_correct", "kl", "measure", "vs_dense", "vs_dense_low", "vs_dense_high",
               "vs_dense_p", "best", "vs_best", "vs_best_low", "vs_best_high", "vs_best_p", "separable_from_best",
               "guard_verdict", "transition_layer", "error")
# acc cells: vs_* is the accuracy difference (cell - other) and *_p McNemar's exact p-value; perplexity
# cells: vs_* is the perplexity ratio (cell / other), no p-value. Intervals: 95%, paired bootstrap.


@dataclass(frozen=True)
class CompareResult:
    """`cells` by (removed set, healer, benchmark) and `profiles` by (removed set, healer); the healer
    "none" is the pruned model as it is, and ((), "none") the dense model."""

    request: CompareRequest
    model: dict  # source, fingerprint, num_layers, dtype
    methods: tuple[MethodOutcome, ...]
    benchmarks: tuple[dict, ...]  # name, split, format, n, chance, items key
    cells: Mapping[tuple[Variant, str, str], dict]
    profiles: Mapping[tuple[Variant, str], dict]  # each has its guard verdict
    guard_items: dict | None
    computed: int
    from_cache: int
    failures: Mapping[tuple[Variant, str, str], str]  # (removed set, healer, benchmark or guard label) -> error
    executor: dict  # name, workers

    @property
    def budgets(self) -> tuple[int, ...]:
        return self.request.budgets

    @property
    def healers(self) -> tuple[str, ...]:
        return self.request.heal

    def dense(self, benchmark: str) -> dict:
        return self.cells[((), NO_HEALER, benchmark)]

    def cell(self, method: MethodOutcome, k: int, benchmark: str, healer: str = NO_HEALER) -> dict | None:
        """The cell, or None where the method stopped or failed (see `error`)."""
        removed = method.removed[k]
        return None if removed is None else self.cells.get((removed, healer, benchmark))

    def error(self, method: MethodOutcome, k: int, benchmark: str, healer: str = NO_HEALER) -> str | None:
        """Why a cell has no score: its method's planning failed, or scoring it did."""
        if method.error:
            return f"planning failed: {method.error}"
        removed = method.removed[k]
        return None if removed is None else self.failures.get((removed, healer, benchmark))

    def retention(self, cell: dict, benchmark: str) -> float | None:
        """acc over the dense acc (None: the benchmark has no acc)."""
        if "acc" not in cell:
            return None
        dense = self.dense(benchmark)["acc"]
        return cell["acc"] / dense if dense else float("nan")

    def ppl_ratio(self, cell: dict, benchmark: str) -> float | None:
        """Perplexity over the dense perplexity (None: not a perplexity benchmark)."""
        return cell["ppl"] / self.dense(benchmark)["ppl"] if "ppl" in cell else None

    @cached_property
    def evidence(self) -> dict[Key, dict]:
        """Per pruned cell, by (removed set, healer, benchmark): its paired tests and agreement
        (drtframe.comparison.evidence)."""
        return cell_evidence(self)

    def collapsed(self, removed: Variant, healer: str = NO_HEALER) -> bool:
        profile = self.profiles.get((removed, healer))
        return profile is not None and profile["verdict"] == "refuse"

    def lines(self) -> list[tuple[MethodOutcome, str]]:
        """Every (method, healer) pair, the way tables and plots show them."""
        return [(m, h) for m in self.methods for h in self.healers]

    @staticmethod
    def label(method: MethodOutcome, healer: str) -> str:
        return method.method if healer == NO_HEALER else f"{method.method} + {healer}"

    def rows(self) -> list[dict]:
        """The tidy table: the dense model (k = 0), then every method x budget x healer x benchmark."""
        rows = []
        method_of = {m.method: m for m in self.methods}
        entries = [("dense", 0, NO_HEALER, ())] + [(m.method, k, h, m.removed[k]) for m, h in self.lines()
                                                   for k in self.budgets]
        for method, k, healer, removed in entries:
            for bench in self.benchmarks:
                row = dict.fromkeys(CSV_COLUMNS, "")
                row.update(model=self.model["source"], method=method, k=k, healer=healer, benchmark=bench["name"],
                           split=bench["split"])
                cell = self.cells.get((removed, healer, bench["name"])) if removed is not None else None
                if cell is None:  # the dense model always has its cells
                    error = self.error(method_of[method], k, bench["name"], healer)
                    row.update(guard_verdict="error" if error else "stopped", error=error or "")
                else:
                    profile = self.profiles.get((removed, healer)) or {}
                    guard_error = self.failures.get((removed, healer, GUARD))
                    row.update({column: _blank_none(cell.get(column)) for column in
                                ("n", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "ppl")})
                    row.update(removed_layers=" ".join(map(str, removed)), ppl_metric=cell.get("metric", ""),
                               retention=_blank_none(self.retention(cell, bench["name"])),
                               ppl_ratio=_blank_none(self.ppl_ratio(cell, bench["name"])),
                               **_evidence_columns(self.evidence.get((removed, healer, bench["name"])), cell),
                               guard_verdict=profile.get("verdict", "error" if guard_error else ""),
                               transition_layer=_blank_none(profile.get("transition_original_layer")),
                               error=f"guard: {guard_error}" if guard_error else "")
                rows.append(row)
        return rows

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return buffer.getvalue()

    def to_json(self) -> dict:
        r = self.request
        return {
            "grid": {"model": r.model.source, "dtype": self.model["dtype"], "methods": list(r.methods),
                     "budgets": list(r.budgets), "benchmarks": list(r.benchmarks), "split": r.eval_split,
                     "format": r.format, "limit": r.limit, "data_dir": r.data_dir, "heal": list(r.heal),
                     "calibration": r.calibration.as_dict(), "options": {m: dict(o) for m, o in r.options.items()},
                     "guard": self.guard_items is not None, "readout": r.readout},
            "model": self.model,
            "methods": [m.to_json() for m in self.methods],
            "benchmarks": list(self.benchmarks),
            "guard_items": self.guard_items,
            "dense_profile": self.profiles.get(((), NO_HEALER)),
            "variants": [{"removed": list(v), "healer": h, "profile": p} for (v, h), p in self.profiles.items() if v],
            "cells": [{"removed": list(v), "healer": h, "benchmark": b, "chosen_by": self._chosen_by(v),
                       "retention": self.retention(c, b), "ppl_ratio": self.ppl_ratio(c, b), "guard": self._guard(v, h),
                       "evidence": self.evidence.get((v, h, b)), **c}
                      for (v, h, b), c in self.cells.items()],
            "failures": [{"removed": list(v), "healer": h, "what": label, "error": e}
                         for (v, h, label), e in self.failures.items()],
            "work": {"computed": self.computed, "from_cache": self.from_cache, "executor": self.executor},
        }

    def _guard(self, removed: Variant, healer: str) -> dict | None:
        """The variant's decision on the guard items: l* (original numbering), final lens accuracy, verdict."""
        profile = self.profiles.get((removed, healer))
        if profile is None:
            return None
        return {"verdict": profile["verdict"], "collapsed": profile["verdict"] == "refuse",
                "transition_layer": profile["transition_original_layer"], "final_acc": profile["final_acc"]}

    def _chosen_by(self, removed: Variant) -> list[str]:
        if not removed:
            return ["dense"]
        return [f"{m.method}@k={k}" for m in self.methods for k in self.budgets if m.removed[k] == removed]


def _evidence_columns(evidence: dict | None, cell: dict) -> dict:
    """The CSV's evidence columns of one pruned cell (the dense model's stay blank)."""
    if evidence is None:
        return {}
    measure = primary(cell)
    columns = {"measure": measure, "best": evidence["best"], "separable_from_best": evidence["separable_from_best"],
               **evidence.get("agreement", {})}
    for name, test in (("vs_dense", evidence["vs_dense"].get(measure)), ("vs_best", evidence["vs_best"])):
        if test is not None:
            columns.update({name: test["diff"], f"{name}_low": test["low"], f"{name}_high": test["high"],
                            f"{name}_p": _blank_none(test["p"])})
    return columns


def _blank_none(value):
    return "" if value is None else value
