"""What a grid's numbers support: every cell tested against the dense model and against the best
method at its K, on the same items (drtframe.comparison.paired), and its answers against the dense
model's (drtframe.comparison.agreement).

A benchmark is judged by its primary measure: acc (higher is better) for multiple choice, perplexity
(lower is better) for a perplexity benchmark. The best cell at each K and benchmark is the one with
the best primary measure over every method and healer; a cell is "not separable" from it when the 95%
paired interval of their difference holds no difference. No correction for the many comparisons a
grid makes is applied: with twenty cells, about one pair differs at 95% by chance alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .agreement import agreement, chosen
from .paired import PairedTest, accuracy_test, perplexity_test
from .request import Variant

if TYPE_CHECKING:
    from .result import CompareResult

Key = tuple[Variant, str, str]  # (removed set, healer, benchmark)


def primary(cell: dict) -> str:
    """The measure a cell is ranked by: "ppl" for a perplexity benchmark, else "acc"."""
    return "ppl" if "ppl" in cell else "acc"


def measures(cell: dict, bench: dict) -> list[str]:
    """The measures a cell can be tested on: perplexity where it has one, acc where items have right answers."""
    return [m for m, has in (("ppl", "ppl" in cell), ("acc", correct(cell, bench) is not None)) if has]


def correct(cell: dict, bench: dict) -> np.ndarray | None:
    """Per item, whether the cell's model got it right (None: the benchmark has no right answers)."""
    if "correct" in cell:
        return np.asarray(cell["correct"], dtype=bool)
    if "loglikelihoods" in cell and "gold" in bench:
        return chosen(cell["loglikelihoods"]) == np.asarray(bench["gold"])
    return None


def paired(a: dict, b: dict, bench: dict, measure: str) -> PairedTest:
    """`b` against `a` on `measure` (both cells of the same benchmark and items)."""
    if measure == "ppl":
        (ll_a, counts), (ll_b, _) = zip(*a["units"]), zip(*b["units"])
        return perplexity_test(ll_a, ll_b, counts)
    return accuracy_test(correct(a, bench), correct(b, bench))


def better(measure: str, x: float, y: float) -> bool:
    return x < y if measure == "ppl" else x > y


def cell_evidence(result: CompareResult) -> dict[Key, dict]:
    """Per non-dense cell: `vs_dense` (a test per measure the cell has), `agreement` (multiple choice),
    `best`, `vs_best` (on the primary measure; None for the best cell) and `separable_from_best`."""
    benches = {b["name"]: b for b in result.benchmarks}
    evidence: dict[Key, dict] = {}
    for name, bench in benches.items():
        dense = result.dense(name)
        for k in result.budgets:
            cells: Mapping[Key, dict] = {(m.removed[k], h, name): cell for m, h in result.lines()
                                         if (cell := result.cell(m, k, name, h)) is not None}
            if not cells:
                continue
            measure = primary(dense)
            best_key = None
            for key, cell in cells.items():
                if best_key is None or better(measure, cell[measure], cells[best_key][measure]):
                    best_key = key
            for key, cell in cells.items():
                entry = {"vs_dense": {m: paired(dense, cell, bench, m).to_json() for m in measures(cell, bench)},
                         "best": key == best_key}
                if "loglikelihoods" in cell and "gold" in bench:
                    entry["agreement"] = agreement(dense["loglikelihoods"], cell["loglikelihoods"], bench["gold"])
                test = None if key == best_key else paired(cells[best_key], cell, bench, measure)
                entry["vs_best"] = test.to_json() if test else None
                entry["separable_from_best"] = bool(test and test.separable)
                evidence[key] = entry
    return evidence
