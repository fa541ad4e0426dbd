"""Decision pruning on a tiny model: choices equal a direct computation, guidance stays in the Decisive Phase.

The tiny benchmark's answers are the dense tiny model's own predictions, so the model decides its
items (final accuracy 1) and, for seed 0, the lens shows a transition at the last of 5 layers
(lens accuracy 0.58-0.70 before it).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from click.testing import CliRunner

from drtframe.cli import cli
from drtframe.evaluation.loglikelihood import choice_scores
from drtframe.evaluation.runner import load_items, resolve_benchmark
from drtframe.models.loading import ModelSpec, load_model
from drtframe.probing.lens import layer_scores
from drtframe.probing.profile import decision_profile
from drtframe.scoring.calibration_items import ItemWindow
from drtframe.scoring.methods import resolve_method
from drtframe.scoring.scorer import ScoringContext
from drtframe_plugins.decision import Decision, DecisionStop
from test_eval_cli import TASK

WINDOW = {"eval_items": "20", "calib_items": "60"}


@pytest.fixture
def setup(tiny_llama_dir, decided_task, registry):
    handle = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    items = ItemWindow(str(decided_task), eval_items=20, calib_items=60).load(registry)[0]
    return handle, items, {"benchmark": str(decided_task), **WINDOW}


def profile_of(handle, items, final_only=False):
    gold = [item.gold for item in items]
    if final_only:
        return decision_profile([s[:, :1] for s in choice_scores(handle, items)], gold)
    return decision_profile(layer_scores(handle, items), gold)


def test_decision_picks_the_block_whose_removal_keeps_the_highest_margin(setup, registry):
    handle, items, options = setup
    direct = []
    for position, layer in enumerate(handle.kept):
        with handle.temporarily_without((layer,)) as pruned:
            final = profile_of(pruned, items, final_only=True)
        direct.append((final.decision_margin[-1], final.acc[-1], -position))
    method = resolve_method(registry, "decision", options)
    ctx = ScoringContext(handle, None)
    scores = method.scorer.score(ctx)
    assert scores == pytest.approx([-dm for dm, _, _ in direct], abs=1e-4)
    plan = method.plan(handle, 1, None)
    assert plan.order == (handle.kept[-max(direct)[2]],)
    naive = resolve_method(registry, "decision", {**options, "cache": "false"}).scorer.score(ctx)
    assert naive == pytest.approx(scores, abs=1e-9)


def guided(task, registry):
    """decision_guided reading all 80 items, and those items."""
    method = resolve_method(registry, "decision_guided", {"benchmark": str(task), "eval_items": "0", "calib_items": "80"})
    return method, method.scorer.items()


def test_decision_guided_only_removes_decisive_phase_blocks(tiny_llama_dir, decided_task, registry):
    handle = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    method, items = guided(decided_task, registry)
    assert profile_of(handle, items).transition.layer == 4  # Silent Phase: blocks 0-3
    try:
        order = method.plan(handle, 3, None).order
    except DecisionStop as stop:
        order = stop.order
    assert order
    for step, layer in enumerate(order):
        with handle.temporarily_without(order[:step]) as pruned:
            decisive = [pruned.kept[p] for p in profile_of(pruned, items).decisive_phase]
        assert layer in decisive, (step, order, decisive)


def test_decision_guided_stops_before_the_silent_phase_level(tiny_llama_dir, decided_task, registry, monkeypatch):
    handle = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    method, _ = guided(decided_task, registry)
    real = Decision.outcomes

    def collapsing_after_one(self, ctx, positions=None):  # any second removal would collapse the decision
        return [replace(o, decides=not ctx.handle.removed) for o in real(self, ctx, positions)]

    monkeypatch.setattr(Decision, "outcomes", collapsing_after_one)
    with pytest.raises(DecisionStop) as stopped:
        method.plan(handle, 3, None)
    assert len(stopped.value.order) == 1
    message = str(stopped.value)
    assert message.startswith("decision_guided stopped after 1 of 3 removals")
    assert "Decisive-Phase block" in message and "items 0-79 to the Silent-Phase level" in message


def test_no_transition_stops_with_one_line_exit_2_and_writes_nothing(tiny_llama_dir, tmp_path):
    rng = random.Random(1)
    rows = [{"question": f"w{rng.randrange(2, 90)} w3", "options": ["w4", "w5", "w6"], "answer": rng.randrange(3)}
            for _ in range(40)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "task.yaml").write_text(TASK)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["prune", "-m", str(tiny_llama_dir), "--method", "decision_guided", "-k", "2",
                                      "-o", f"benchmark={tmp_path / 'task.yaml'}", "-o", "eval_items=10",
                                      "-o", "calib_items=30", "-O", str(out), "--no-speed"])
    assert result.exit_code == 2, result.output
    assert "stopped after 0 of 2 removals: the model shows no decision transition on tiny_words validation " \
           "items 10-39" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_outputs_record_the_calibration_items(tiny_llama_dir, decided_task, tmp_path):
    opts = [x for key, value in {"benchmark": decided_task, **WINDOW}.items() for x in ("-o", f"{key}={value}")]
    runner = CliRunner()
    result = runner.invoke(cli, ["score", "-m", str(tiny_llama_dir), "--method", "decision", "-k", "1", *opts,
                                 "-O", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["prune", "-m", str(tiny_llama_dir), "--method", "decision", "-k", "1", *opts,
                                 "-O", str(tmp_path / "p"), "--no-speed"])
    assert result.exit_code == 0, result.output
    for record in (json.loads((tmp_path / "s.json").read_text())["calibration_items"],
                   json.loads((tmp_path / "p" / "drtframe.json").read_text())["calibration_items"]):
        assert record == {"benchmark": "tiny_words", "split": "validation", "format": "cloze", "first_item": 20,
                          "last_item": 79, "n": 60, "evaluation_window": [0, 19]}


def test_calibration_items_come_after_the_evaluation_window(decided_task, registry):
    bench = resolve_benchmark(registry, str(decided_task))
    evaluated = {item.index for item in load_items(bench, None, 20, None)}
    items, record = ItemWindow(str(decided_task), eval_items=20, calib_items=60).load(registry)
    assert [item.index for item in items] == list(range(20, 80))
    assert not evaluated & {item.index for item in items}
    with pytest.raises(Exception, match="need 81"):
        ItemWindow(str(decided_task), eval_items=20, calib_items=61).load(registry)


@pytest.mark.parametrize("option, message", [
    ("eval_items=10", "split, data_dir and eval_items need a benchmark option"),
    ("calib_items=150", "the packaged sample has 100 items, so it cannot give 150"),
])
def test_bad_item_options_fail_before_the_model_loads(option, message, tmp_path):
    result = CliRunner().invoke(cli, ["prune", "-m", str(tmp_path / "no-model"), "--method", "decision", "-k", "1",
                                      "-o", option, "-O", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output, result.output
