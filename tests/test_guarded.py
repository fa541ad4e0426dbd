"""The guarded schedule on a tiny Llama: refused blocks are skipped and recorded, its verdicts are the
collapse guard's, it equals `iterative` when nothing is refused, and it stops keeping what it chose.

The items are `decided_task`'s (gold = the dense model's own predictions, so it decides them);
refusals are either real (block_influence's second choice, block 1, leaves accuracy 0.50 against
the best constant answer's 0.38 on 60 items) or forced by a profile that loses its transition.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from click.testing import CliRunner

import drtframe
import drtframe.pruning.runner as pruning
from conftest import WIKITEXT_HEAD
from drtframe.cli import cli
from drtframe.comparison.request import CompareRequest
from drtframe.comparison.runner import compare
from drtframe.errors import DrtframeError, ScheduleStopped
from drtframe.models.loading import ModelSpec, load_model
from drtframe.scoring.calibration import CalibrationSpec
from drtframe.scoring.calibration_items import ItemWindow
from drtframe.scoring.methods import resolve_method
from test_eval_cli import TASK

CALIBRATION = CalibrationSpec(str(WIKITEXT_HEAD), 2, 16)
WINDOW = {"eval_items": "20", "calib_items": "60"}


@pytest.fixture
def handle(tiny_llama_dir, registry):
    return load_model(ModelSpec(str(tiny_llama_dir)), registry)


def plan(registry, handle, method, k, task=None):
    """`method`'s plan for k removals, its guard items (if any) those of `task`."""
    options = {"benchmark": str(task), **WINDOW} if task else {}
    return resolve_method(registry, method, options).plan(handle, k, CALIBRATION)


@pytest.fixture
def lost_when(monkeypatch):
    """Make the guard's evaluation report no transition whenever `predicate(removed layers)` holds."""
    def install(predicate):
        real = pruning.final_profile

        def profile(handle, items):
            found = real(handle, items)
            return replace(found, transition=replace(found.transition, layer=None)) if predicate(handle.removed) else found

        # the public name first: drtframe resolves it from the module on first use, which must not be patched yet
        monkeypatch.setattr(drtframe, "final_profile", profile)  # what the guarded schedule reads
        monkeypatch.setattr(pruning, "final_profile", profile)  # prune's own guard
    return install


def test_a_refused_block_is_skipped_recorded_and_the_next_one_taken(handle, decided_task, registry, lost_when):
    lost_when(lambda removed: 4 in removed)
    result = plan(registry, handle, "reverse_order@guarded", 2, decided_task)
    assert result.order == (3, 2)  # reverse_order's first choice, 4, is refused at both steps
    record = result.record
    assert [(r["step"], r["layer"]) for r in record["rejected"]] == [(1, 4), (2, 4)]
    assert record["evaluations"] == {"dense": 1, "accepted": 2, "rejected": 2}
    assert record["checked"] and record["dense_acc"] == 1.0
    assert record["items"]["first_item"] == 20 and record["items"]["last_item"] == 79
    assert record["summary"].startswith("2 removals kept the decision transition, 2 refused: layer 4 at step 1")


def test_without_refusals_guarded_plans_like_iterative(handle, decided_task, registry):
    for scorer in ("reverse_order", "random"):
        guarded = plan(registry, handle, f"{scorer}@guarded", 3, decided_task)
        assert guarded.order == plan(registry, handle, f"{scorer}@iterative", 3).order
        assert guarded.record["rejected"] == [] and guarded.record["evaluations"]["accepted"] == 3


def test_real_refusals_are_the_collapse_guards_verdicts(handle, decided_task, registry):
    guarded = plan(registry, handle, "block_influence@guarded", 4, decided_task)
    assert guarded.order == (4, 0, 2, 3)
    assert [(r["step"], r["layer"]) for r in guarded.record["rejected"]] == [(2, 1), (4, 1)]
    assert plan(registry, handle, "block_influence@iterative", 2).order == (4, 1)
    items = ItemWindow(str(decided_task), eval_items=20, calib_items=60).load(registry)[0]
    for step in range(1, 5):  # the full logit-lens probe agrees with every verdict
        kept = guarded.order[:step]
        with handle.temporarily_without(kept) as pruned:
            assert pruning.probe_profile(pruned, items).transition.layer is not None
        for refused in (r["layer"] for r in guarded.record["rejected"] if r["step"] == step):
            with handle.temporarily_without(kept[:-1] + (refused,)) as pruned:
                assert pruning.probe_profile(pruned, items).transition.layer is None


def test_the_final_layer_verdict_equals_the_lens_verdict(handle, decided_task, registry):
    items = ItemWindow(str(decided_task), eval_items=20, calib_items=60).load(registry)[0]
    removals = [(a,) for a in range(5)] + [(a, b) for a in range(5) for b in range(a + 1, 5)]
    verdicts = set()
    for removed in removals:
        with handle.temporarily_without(removed) as pruned:
            final = pruning.final_profile(pruned, items).transition.layer is None
            assert final == (pruning.probe_profile(pruned, items).transition.layer is None), removed
            verdicts.add(final)
    assert verdicts == {True, False}


def test_a_plan_for_k_is_the_first_k_removals_of_a_longer_one(handle, decided_task, registry, lost_when):
    longer = plan(registry, handle, "block_influence@guarded", 4, decided_task)
    for k in (1, 2, 3):
        assert plan(registry, handle, "block_influence@guarded", k, decided_task).order == longer.order[:k]
    lost_when(lambda removed: len(removed) >= 3)
    with pytest.raises(ScheduleStopped) as stopped:
        plan(registry, handle, "block_influence@guarded", 4, decided_task)
    assert stopped.value.order == longer.order[:2]


def test_it_stops_when_every_block_is_refused_keeping_what_it_chose(handle, decided_task, registry, lost_when):
    lost_when(lambda removed: len(removed) >= 2)
    with pytest.raises(ScheduleStopped) as stopped:
        plan(registry, handle, "reverse_order@guarded", 3, decided_task)
    assert stopped.value.order == (4,)
    assert str(stopped.value) == (
        "reverse_order@guarded stopped after 1 of 3 removals (removed 4): removing any remaining block leaves no "
        "decision transition on tiny_words validation items 20-79 (accuracy no longer beats the best constant "
        "answer's 0.38 by two standard errors)")
    assert stopped.value.record["evaluations"] == {"dense": 1, "accepted": 1, "rejected": 4}


def test_a_dense_model_without_a_transition_is_not_checked(handle, tmp_path, registry):
    rng = random.Random(1)
    rows = [{"question": f"w{rng.randrange(2, 90)} w3", "options": ["w4", "w5", "w6"], "answer": rng.randrange(3)}
            for _ in range(80)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "task.yaml").write_text(TASK)
    guarded = plan(registry, handle, "reverse_order@guarded", 2, tmp_path / "task.yaml")
    assert guarded.order == (4, 3) and not guarded.record["checked"]
    assert guarded.record["evaluations"] == {"dense": 1, "accepted": 0, "rejected": 0}


def test_bad_item_options_fail_before_loading(registry):
    with pytest.raises(DrtframeError, match="guarded: split, data_dir and eval_items need a benchmark option"):
        resolve_method(registry, "block_influence@guarded", {"split": "test"})


def test_prune_and_score_record_the_checks_and_a_stop_is_one_line(tiny_llama_dir, decided_task, tmp_path, lost_when):
    opts = [x for key, value in {"benchmark": decided_task, **WINDOW}.items() for x in ("-o", f"{key}={value}")]
    data = ["--calibration", str(WIKITEXT_HEAD), "--n-samples", "2", "--seq-len", "16"]
    runner = CliRunner()
    result = runner.invoke(cli, ["prune", "-m", str(tiny_llama_dir), "--method", "block_influence@guarded", "-k", "2",
                                 *opts, *data, "--guard-benchmark", str(decided_task), "--guard-eval-items", "20",
                                 "--guard-items", "60", "-O", str(tmp_path / "p"), "--no-speed"])
    assert result.exit_code == 0, result.output
    assert "1 refused: layer 1 at step 2 (accuracy 0.50)" in result.output
    manifest = json.loads((tmp_path / "p" / "drtframe.json").read_text())
    assert manifest["removal_order"] == [4, 0] and manifest["decision_guard"]["checked"]
    assert manifest["schedule_record"]["evaluations"] == {"dense": 1, "accepted": 2, "rejected": 1}
    result = runner.invoke(cli, ["score", "-m", str(tiny_llama_dir), "--method", "block_influence@guarded", "-k", "2",
                                 *opts, *data, "-O", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s.json").read_text())["schedule_record"] == manifest["schedule_record"]
    lost_when(lambda removed: len(removed) >= 1)
    result = runner.invoke(cli, ["prune", "-m", str(tiny_llama_dir), "--method", "block_influence@guarded", "-k", "2",
                                 *opts, *data, "-O", str(tmp_path / "q"), "--no-speed"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "block_influence@guarded stopped after 0 of 2 removals" in result.output and not (tmp_path / "q").exists()


def test_compare_runs_guarded_methods_and_records_their_checks(tiny_llama_dir, decided_task, tmp_path, registry):
    methods = ("block_influence@guarded", "perplexity@guarded")
    options = {m: {"benchmark": str(decided_task), **WINDOW} for m in methods}
    request = CompareRequest(ModelSpec(str(tiny_llama_dir)), methods, (1, 2, 3), ("arc_easy",), limit=4,
                             calibration=CALIBRATION, guard=None, output_dir=tmp_path / "out", options=options)
    result = compare(request, registry)
    for outcome in result.methods:
        assert outcome.prefix_consistent and outcome.error is None
        assert all(outcome.removed[k] == tuple(sorted(outcome.order[:k])) for k in (1, 2, 3))
        assert outcome.schedule_record["evaluations"]["accepted"] == 3
    assert result.methods[0].order == (4, 0, 2)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())["methods"]
    assert saved[0]["schedule_record"]["rejected"][0]["layer"] == 1
