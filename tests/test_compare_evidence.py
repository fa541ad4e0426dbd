"""What compare's tables claim, checked against the items: differences, intervals, McNemar, flips, KL,
the best method per K and what is not separable from it, in the CSV, JSON, results.md and results.tex."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from drtframe.comparison.agreement import agreement
from test_compare import run_compare


@pytest.fixture
def grid(tiny_llama_dir, tmp_path):
    out = tmp_path / "results"
    ran = run_compare(tiny_llama_dir, out, "--no-guard", "--show", "intervals,agreement", "--limit", "40",
                      methods="block_influence,reverse_order,random")
    assert ran.exit_code == 0, ran.output
    return out, ran.output


def test_every_pruned_cell_is_tested_against_the_dense_model_on_its_items(grid):
    out, printed = grid
    data = json.loads((out / "results.json").read_text())
    gold = {b["name"]: np.array(b["gold"]) for b in data["benchmarks"]}
    dense = {c["benchmark"]: c for c in data["cells"] if not c["removed"]}
    pruned = [c for c in data["cells"] if c["removed"]]
    assert pruned and all(c["evidence"] is None for c in dense.values())
    for cell in pruned:
        answers = gold[cell["benchmark"]]
        right = np.array([np.argmax(lls) for lls in cell["loglikelihoods"]]) == answers
        right_dense = np.array([np.argmax(lls) for lls in dense[cell["benchmark"]]["loglikelihoods"]]) == answers
        test = cell["evidence"]["vs_dense"]["acc"]
        assert test["diff"] == pytest.approx(cell["acc"] - dense[cell["benchmark"]]["acc"], abs=1e-12)
        assert test["low"] <= test["diff"] <= test["high"]
        only_dense, only_pruned = int(np.sum(right_dense & ~right)), int(np.sum(right & ~right_dense))
        expected = 1.0 if only_dense + only_pruned == 0 else stats.binomtest(only_pruned, only_dense + only_pruned).pvalue
        assert test["p"] == pytest.approx(expected)
        assert cell["evidence"]["agreement"] == agreement(dense[cell["benchmark"]]["loglikelihoods"],
                                                          cell["loglikelihoods"], list(answers))
    assert "Δacc" in printed and "flips" in printed and "KL" in printed


def test_one_best_cell_per_budget_and_the_rest_judged_against_it(grid):
    out, _ = grid
    rows = list(csv.DictReader((out / "results.csv").open()))
    for (bench, k) in {(r["benchmark"], r["k"]) for r in rows if r["k"] != "0"}:
        here = [r for r in rows if (r["benchmark"], r["k"]) == (bench, k) and r["acc"]]
        best = [r for r in here if r["best"] == "True"]
        assert len({r["removed_layers"] for r in best}) == 1
        assert float(best[0]["acc"]) == max(float(r["acc"]) for r in here)
        for row in here:
            if row["best"] == "True":
                assert row["vs_best"] == "" and row["separable_from_best"] == "False"
                continue
            low, high = float(row["vs_best_low"]), float(row["vs_best_high"])
            assert float(row["vs_best"]) == pytest.approx(float(row["acc"]) - float(best[0]["acc"]), abs=1e-12)
            assert (row["separable_from_best"] == "True") == (not low <= 0 <= high)


def test_markdown_and_latex_carry_the_tables_with_their_intervals(grid):
    out, _ = grid
    markdown = (out / "results.md").read_text()
    latex = (out / "results.tex").read_text()
    assert markdown.count("| method | K=1 | K=2 |") == 2 and "★" in markdown and "Δacc" in markdown
    assert latex.count(r"\begin{tabular}") == 2 and r"$^\star$" in latex and r"$\Delta$acc" in latex
    body = "\n".join(line for line in latex.splitlines() if not line.startswith("%"))
    assert "_" not in body.replace(r"\_", "")  # every underscore of a method name escaped


def test_an_unknown_detail_is_refused(tiny_llama_dir, tmp_path):
    ran = run_compare(tiny_llama_dir, tmp_path / "out", "--show", "pvalues")
    assert ran.exit_code == 2 and "intervals, agreement" in ran.output
