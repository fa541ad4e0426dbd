"""Perplexity benchmarks in compare: cells replayed from the dense model's forwards equal the pruned model
evaluated on its own, their units reproduce the perplexity, and they are cached like any cell."""

from __future__ import annotations

import csv
import json
import math
import random

import pytest

from drtframe.comparison.request import CompareRequest
from drtframe.comparison.runner import compare
from drtframe.evaluation.runner import resolve_benchmark
from drtframe.evaluation.text_scores import evaluate_text
from drtframe.models.loading import ModelSpec, load_model
from test_compare import run_compare


@pytest.fixture
def text_dir(tmp_path):
    """WikiText-shaped rows (Salesforce/wikitext and lambada_openai layouts) over the tiny vocabulary."""
    rng = random.Random(0)
    root = tmp_path / "data"
    lines = [" ".join(f"w{rng.randrange(2, 90)}" for _ in range(rng.randrange(5, 30))) + "\n" for _ in range(40)]
    for path, rows in ((root / "Salesforce/wikitext/wikitext-2-raw-v1/test.jsonl", [{"text": t} for t in lines]),
                       (root / "EleutherAI/lambada_openai/default/test.jsonl", [{"text": t.strip()} for t in lines])):
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_replayed_perplexity_cells_equal_each_pruned_model_on_its_own(tiny_llama_dir, text_dir, tmp_path, registry):
    out = tmp_path / "out"
    ran = run_compare(tiny_llama_dir, out, "--no-guard", "-b", "wikitext2_ppl,lambada_openai", "--data-dir", text_dir,
                      "-o", "wikitext2_ppl:seq_len=16", "--limit", "12", methods="block_influence,reverse_order")
    assert ran.exit_code == 0, ran.output
    assert "wikitext2_ppl (test, perplexity, n=12): dense" in ran.output
    data = json.loads((out / "results.json").read_text())
    handle = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    chunked = resolve_benchmark(registry, "wikitext2_ppl").configured(16)
    lambada = resolve_benchmark(registry, "lambada_openai")
    cells = [c for c in data["cells"] if c["benchmark"] in ("wikitext2_ppl", "lambada_openai")]
    assert len({tuple(c["removed"]) for c in cells}) >= 3
    for cell in cells:
        benchmark = chunked if cell["benchmark"] == "wikitext2_ppl" else lambada
        with handle.temporarily_without(tuple(cell["removed"])) as model:
            alone = evaluate_text(model, benchmark, 12, text_dir)
        assert cell["n"] == alone["n"] == 12
        assert cell["ppl"] == pytest.approx(alone["ppl"], rel=1e-5)
        for (ll, count), (ll_alone, count_alone) in zip(cell["units"], alone["units"]):
            assert ll == pytest.approx(ll_alone, abs=1e-4) and count == count_alone
        lls, counts = zip(*cell["units"])
        assert cell["ppl"] == pytest.approx(math.exp(-sum(lls) / sum(counts)), rel=1e-12)
        if cell["removed"]:
            dense = next(c for c in cells if not c["removed"] and c["benchmark"] == cell["benchmark"])
            test = cell["evidence"]["vs_dense"]["ppl"]
            assert test["diff"] == pytest.approx(cell["ppl"] / dense["ppl"], rel=1e-9)
            assert cell["ppl_ratio"] == pytest.approx(test["diff"], rel=1e-9)
            if cell["benchmark"] == "lambada_openai":
                assert cell["evidence"]["vs_dense"]["acc"]["diff"] == pytest.approx(cell["acc"] - dense["acc"])
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["ppl_metric"] for r in rows if r["benchmark"] == "wikitext2_ppl"} == {"token_perplexity"}
    assert all(r["measure"] == "ppl" for r in rows if r["benchmark"] == "wikitext2_ppl" and r["k"] != "0")
    again = run_compare(tiny_llama_dir, out, "--no-guard", "-b", "wikitext2_ppl,lambada_openai", "--data-dir", text_dir,
                        "-o", "wikitext2_ppl:seq_len=16", "--limit", "12", methods="block_influence,reverse_order")
    assert "0 pieces of work computed" in again.output


def test_a_chunk_length_is_part_of_the_cell_key(tiny_llama_dir, text_dir, tmp_path, registry):
    def run(seq_len):
        return compare(CompareRequest(ModelSpec(str(tiny_llama_dir)), ("reverse_order",), (1,), ("wikitext2_ppl",),
                                      data_dir=str(text_dir), options={"wikitext2_ppl": {"seq_len": seq_len}},
                                      guard=None, output_dir=tmp_path / "out"), registry)

    first, second = run("16"), run("8")
    assert second.from_cache == 1 and second.computed == 2  # the plan is reused, both cells are new
    assert first.dense("wikitext2_ppl")["n"] < second.dense("wikitext2_ppl")["n"]


def test_the_packaged_perplexity_slices_need_no_data_dir(tiny_llama_dir, tmp_path):
    ran = run_compare(tiny_llama_dir, tmp_path / "out", "--no-guard", "-b", "arc_easy,wikitext2_ppl", "--limit", "4",
                      "-o", "wikitext2_ppl:seq_len=32", methods="reverse_order")
    assert ran.exit_code == 0, ran.output
    assert "arc_easy (validation" in ran.output and "wikitext2_ppl (test, perplexity, n=4)" in " ".join(ran.output.split())
    wrong = run_compare(tiny_llama_dir, tmp_path / "out2", "--no-guard", "-b", "wikitext2_ppl", "--split", "validation",
                        methods="reverse_order")
    assert wrong.exit_code == 2 and "packaged wikitext2_ppl rows are of the test split" in wrong.output


def test_the_default_grid_holds_the_recommended_method_and_a_packaged_perplexity_benchmark(registry, monkeypatch):
    """The embedded default: decision beside decision_guided and the baselines, and a perplexity benchmark
    read from the packaged rows (no hub: `datasets` is never asked)."""
    import datasets

    from drtframe.comparison.cells import TextBenchmarkItems
    from drtframe.comparison.grid import Grid

    def no_hub(*args, **kwargs):
        raise AssertionError("the default grid must not read the hub")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    request = CompareRequest()
    assert {"decision", "decision_guided", "block_influence", "angular_distance", "perplexity"} <= set(request.methods)
    grid = Grid.prepare(request, registry)
    text = [b for b in grid.benches if isinstance(b, TextBenchmarkItems)]
    assert [b.name for b in text] == ["lambada_openai"] and len(text[0].rows) == 100
    assert all(len(b.items) == 100 for b in grid.benches if b not in text)
