"""`drtframe compare` on tiny models: replay equals running the pruned model whole, the store never
mixes models, reruns and resumes recompute only what is missing, and bad input gets one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import WIKITEXT_HEAD
from drtframe.cli import cli
from drtframe.comparison.request import CompareRequest
from drtframe.comparison.result import CSV_COLUMNS
from drtframe.comparison.runner import compare
from drtframe.comparison.variants import variant_scores
from drtframe.evaluation.items import MCItem
from drtframe.evaluation.loglikelihood import loglikelihoods
from drtframe.models.architecture import find_architecture
from drtframe.models.handle import ModelHandle
from drtframe.models.loading import ModelSpec, load_model
from drtframe.scoring.calibration import CalibrationSpec
from drtframe.scoring.calibration_items import ItemWindow
from tiny_models import CONFIGS, tiny_model, tiny_tokenizer

GRID = ("-b", "arc_easy,piqa", "-k", "1,2", "--limit", "6", "--calibration", str(WIKITEXT_HEAD),
        "--n-samples", "2", "--seq-len", "16")
METHODS = "block_influence,angular_distance,reverse_order"


def words_items(n: int = 9) -> list[MCItem]:
    """Items over the tiny vocabulary with contexts and continuations of varied lengths."""
    items = []
    for i in range(n):
        context = " ".join(f"w{(i * 7 + j) % 90}" for j in range(3 + i % 4))
        continuations = tuple(" " + " ".join(f"w{(i + c * 5 + j) % 90}" for j in range(1 + (i + c) % 3)) for c in range(3))
        items.append(MCItem("words", i, (context,) * 3, continuations, i % 3, tuple(len(c) for c in continuations)))
    return items


def handle_for(model_type: str, registry):
    model = tiny_model(model_type)
    arch = find_architecture(registry, model.config.model_type)
    return ModelHandle(model, tiny_tokenizer(), model_type, arch, model.config.num_hidden_layers)


VARIANTS = [(0,), (4,), (1, 3), (3, 4), (0, 2, 4), (1, 2, 3, 4)]


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
@pytest.mark.parametrize("per_layer", [False, True], ids=["eval", "lens"])
def test_replayed_variants_equal_the_pruned_model_run_whole(model_type, per_layer, registry, tmp_path):
    handle = handle_for(model_type, registry)
    items = words_items()
    asked = [(), *VARIANTS]
    replayed = dict(variant_scores(handle, items, asked, per_layer, replay=True, budget=16))
    whole = dict(variant_scores(handle, items, asked, per_layer, replay=False, budget=16))
    assert list(replayed) == asked
    for variant in asked:
        for got, want in zip(replayed[variant], whole[variant]):
            assert got.shape == want.shape == (3, (5 - len(variant)) if per_layer else 1)
            assert torch.allclose(got, want, atol=1e-5), (variant, got, want)


def test_a_replayed_cell_equals_the_saved_and_reloaded_pruned_model(registry, tmp_path):
    from drtframe.pruning.saving import save_pruned

    handle = handle_for("llama", registry)
    items = words_items()
    replayed = dict(variant_scores(handle, items, [(1, 3)], budget=16))[(1, 3)]
    save_pruned(handle.without((1, 3)), tmp_path / "pruned", {}, overwrite=False)
    reloaded = load_model(ModelSpec(str(tmp_path / "pruned")), registry)
    for got, want in zip(replayed, loglikelihoods(reloaded, items)):
        assert torch.allclose(got[:, 0], torch.tensor(want), atol=1e-5)


def run_compare(model_dir, out, *args, methods=METHODS):
    guard = [] if "--no-guard" in args else ["--guard-items", "8"]
    return CliRunner().invoke(cli, ["compare", "-m", str(model_dir), "--methods", methods, *GRID, *guard,
                                    "-O", str(out), *map(str, args)])


def stored(out: Path, kind: str) -> list[Path]:
    return sorted((out / "cache" / kind).glob("*.json"))


def test_outputs_table_and_an_instant_rerun(tiny_llama_dir, tmp_path):
    out = tmp_path / "results"
    first = run_compare(tiny_llama_dir, out)
    assert first.exit_code == 0, first.output
    assert "arc_easy (validation, cloze, n=6)" in first.output and "piqa (validation" in first.output
    assert {p.name for p in out.iterdir()} == {"cache", "results.json", "results.csv", "results.md", "results.tex",
                                               "accuracy_vs_removed.png", "removal_map.png"}
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == 1 + 2 * (1 + 3 * 2)  # benchmarks x (dense + methods x budgets)
    data = json.loads((out / "results.json").read_text())
    assert data["dense_profile"]["kept"] == [0, 1, 2, 3, 4] and data["guard_items"]["first_item"] == 470
    assert all(c["retention"] == c["acc"] / next(d["acc"] for d in data["cells"] if not d["removed"]
                                                 and d["benchmark"] == c["benchmark"]) for c in data["cells"])
    again = run_compare(tiny_llama_dir, out)
    assert again.exit_code == 0 and "0 pieces of work computed" in again.output
    assert (out / "results.csv").read_text().splitlines() == lines


def test_prefix_consistent_methods_are_planned_once(tiny_llama_dir, tmp_path, registry):
    request = CompareRequest(ModelSpec(str(tiny_llama_dir)), ("block_influence", "reverse_order@iterative",
                                                        "angular_distance"), (1, 2, 3), ("arc_easy",), limit=4,
                             calibration=CalibrationSpec(str(WIKITEXT_HEAD), 2, 16), guard=None,
                             output_dir=tmp_path / "out")
    result = compare(request, registry)
    assert len(stored(tmp_path / "out", "sequences")) == 1 + 1 + 3  # angular's contiguous runs: one per budget
    for method in result.methods[:2]:
        assert method.prefix_consistent and all(method.removed[k] == tuple(sorted(method.order[:k])) for k in (1, 2, 3))
    angular = result.methods[2]
    assert not angular.prefix_consistent
    assert all(max(angular.removed[k]) - min(angular.removed[k]) == k - 1 for k in (1, 2, 3))  # each a run of k


def test_a_removed_set_is_evaluated_once_whichever_methods_chose_it(tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    result = run_compare(tiny_llama_dir, out, "--no-guard", methods="reverse_order,reverse_order@iterative")
    assert result.exit_code == 0, result.output
    assert len(stored(out, "cell")) == 2 * 3  # {}, {4}, {3, 4} on two benchmarks
    assert "6 pieces of work computed" not in result.output  # plus the two plans
    assert "8 pieces of work computed" in result.output
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert sorted(c["chosen_by"] for c in cells if c["removed"] == [3, 4])[0] == [
        "reverse_order@k=2", "reverse_order@iterative@k=2"]


def test_two_models_under_one_name_never_share_a_cell(tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    assert run_compare(tiny_llama_dir, out, "--no-guard").exit_code == 0
    before, cells = (out / "results.csv").read_text(), len(stored(out, "cell"))
    tiny_model("llama", seed=1).save_pretrained(tiny_llama_dir)  # new weights, same directory name
    again = run_compare(tiny_llama_dir, out, "--no-guard")
    assert again.exit_code == 0 and "0 read from the cache" in again.output
    assert len(stored(out, "cell")) == cells + len(json.loads((out / "results.json").read_text())["cells"])
    assert (out / "results.csv").read_text() != before


def grid_request(model_dir, out) -> CompareRequest:
    return CompareRequest(ModelSpec(str(model_dir)), ("block_influence", "reverse_order"), (1, 2), ("arc_easy", "piqa"),
                          limit=5, calibration=CalibrationSpec(str(WIKITEXT_HEAD), 2, 16),
                          guard=ItemWindow.sample(8), output_dir=out)


def test_an_interrupted_grid_resumes_to_the_same_results(tiny_llama_dir, tmp_path, registry):
    clean = compare(grid_request(tiny_llama_dir, tmp_path / "clean"), registry)

    def interrupt(progress):
        if progress.done == 6:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        compare(grid_request(tiny_llama_dir, out), registry, progress=interrupt)
    assert not (out / "results.csv").exists()
    kept = len(list((out / "cache").rglob("*.json")))
    assert kept == 6  # two plans, then four profiles: everything finished before the interrupt is stored
    # a crash mid-write leaves a temporary file and, at worst, an unreadable value: both are ignored
    (out / "cache" / "cell").mkdir(exist_ok=True)
    (out / "cache" / "cell" / ".abc.json.x.partial").write_text('{"acc": 0.')
    victim = stored(out, "profile")[0]
    victim.write_text(victim.read_text()[:10])
    resumed = compare(grid_request(tiny_llama_dir, out), registry)
    assert resumed.from_cache == kept - 1 and resumed.computed == clean.computed - (kept - 1)
    assert (out / "results.csv").read_text() == (tmp_path / "clean" / "results.csv").read_text()
    assert json.loads((out / "results.json").read_text())["cells"] == json.loads(
        (tmp_path / "clean" / "results.json").read_text())["cells"]


def test_kill_9_mid_grid_loses_only_unfinished_cells(tiny_llama_dir, tmp_path):
    drtframe = Path(sys.executable).with_name("drtframe")
    # all 200 packaged items, so that a cell takes long enough for the kill to land mid-grid
    grid = list(GRID)
    grid[grid.index("--limit") + 1] = "200"
    args = [str(drtframe), "compare", "-m", str(tiny_llama_dir), "--methods", METHODS, *grid, "--guard-items", "8"]
    clean = subprocess.run([*args, "-O", str(tmp_path / "clean")], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([*args, "-O", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(stored(out, "cell")) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.csv").exists()
    resumed = subprocess.run([*args, "-O", str(out)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.csv").read_text() == (tmp_path / "clean" / "results.csv").read_text()


@pytest.mark.parametrize("args, message", [
    (("--methods", "block_influense"), "did you mean 'block_influence'"),
    (("-b", "arc_easyy"), "did you mean 'arc_easy'"),
    (("-k", "2,5"), "--remove 5 leaves no blocks: the model has 5"),
    (("-k", "2,1"), "--remove must be increasing"),
    (("-k", ","), "--remove names no budget"),
    (("--split", "test"), "packaged arc_easy rows are of the validation split"),
    (("--data-dir", "TESTDATA", "--split", "test"), "ARC-Easy/test.jsonl"),
    (("-o", "random:seed=3"), "in none of --methods"),
])
def test_bad_input_gets_one_line_and_exit_2_and_writes_nothing(args, message, tiny_llama_dir, tmp_path):
    from conftest import TEST_DATA

    args = [str(TEST_DATA / "mc") if a == "TESTDATA" else a for a in args]
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["compare", "-m", str(tiny_llama_dir), "-k", "1", "--limit", "3", "-O", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_an_unwritable_output_directory_is_refused_before_loading(tiny_llama_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["compare", "-m", str(tiny_llama_dir), "-O", str(blocker / "results")])
    assert result.exit_code == 2 and "cannot write results" in result.output


def test_the_readme_library_example_runs(tiny_llama_dir, tmp_path, monkeypatch):
    """The README's five lines, on the tiny model instead of the default SmolLM2."""
    import functools
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = re.search(r"```python\n(from drtframe import CompareRequest, compare\n.*?)```", readme, re.S).group(1)
    tiny_request = functools.partial(CompareRequest, model=ModelSpec(str(tiny_llama_dir)), output_dir=tmp_path / "out",
                                     calibration=CalibrationSpec(str(WIKITEXT_HEAD), 2, 16), guard=ItemWindow.sample(8))
    monkeypatch.setattr("drtframe.CompareRequest", tiny_request)
    exec(compile(snippet, "README.md", "exec"), {})
    assert (tmp_path / "out" / "results.csv").is_file()


def test_ctrl_c_says_one_line_and_keeps_finished_cells(tiny_llama_dir, tmp_path, monkeypatch):
    from drtframe.comparison import runner

    def interrupted(request, registry=None, progress=lambda p: None, executor=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "compare", interrupted)
    result = run_compare(tiny_llama_dir, tmp_path / "out")
    assert result.exit_code == 130
    assert "Interrupted; finished cells are kept in" in result.output and "Traceback" not in result.output


def test_healed_variants_sit_beside_the_unhealed_and_equal_an_independent_heal(tiny_llama_dir, tmp_path, registry):
    from drtframe.evaluation.loglikelihood import loglikelihoods
    from drtframe.healing.apply import heal, resolve_healer

    out = tmp_path / "out"
    result = run_compare(tiny_llama_dir, out, "--heal", "none,linear_ls", "-o", "linear_ls:ridge=1e-3",
                         methods="block_influence")
    assert result.exit_code == 0, result.output
    assert "block_influence + linear_ls" in result.output
    data = json.loads((out / "results.json").read_text())
    healed = [c for c in data["cells"] if c["healer"] == "linear_ls" and c["benchmark"] == "arc_easy"]
    assert len(healed) == 2 and all(c["healing"]["options"]["ridge"] == 1e-3 for c in healed)
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * (1 + 2 * 2)  # benchmarks x (dense + budgets x {none, linear_ls})
    cell = healed[0]
    handle = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    calibration = CalibrationSpec(str(WIKITEXT_HEAD), 2, 16)
    heal(handle, tuple(cell["removed"]), resolve_healer(registry, "linear_ls", {"ridge": "1e-3"}), calibration)
    pruned = handle.without(tuple(cell["removed"]))
    from drtframe.comparison.cells import load_benchmark
    from drtframe.comparison.request import SAMPLE_EVAL_DIR

    items = load_benchmark(registry, "arc_easy", "validation", None, 6, SAMPLE_EVAL_DIR).items
    for got, want in zip(cell["loglikelihoods"], loglikelihoods(pruned, items)):
        assert got == pytest.approx(want, abs=1e-5)
    unhealed = next(c for c in data["cells"] if c["healer"] == "none" and c["removed"] == cell["removed"]
                    and c["benchmark"] == "arc_easy")
    assert unhealed["loglikelihoods"] != cell["loglikelihoods"]
    again = run_compare(tiny_llama_dir, out, "--heal", "none,linear_ls", "-o", "linear_ls:ridge=1e-3", methods="block_influence")
    assert "0 pieces of work computed" in again.output


def test_limit_all_takes_every_row_and_a_bad_limit_is_one_line(tiny_llama_dir, tmp_path):
    args = ["compare", "--model", str(tiny_llama_dir), "--methods", "reverse_order", "-k", "1", "-b", "arc_easy",
            "--no-guard", "-O", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args + ["--limit", "all"])
    assert result.exit_code == 0, result.output
    assert "n=200" in result.output  # every packaged ARC-Easy validation row
    bad = CliRunner().invoke(cli, args + ["--limit", "many"])
    assert bad.exit_code == 2 and "expected a number or 'all', got 'many'" in bad.output
