"""The prune collapse guard: exit 3 and nothing written when the decision transition is lost; --force writes.

The tiny random model makes no decision of its own, so the collapse is staged by replacing the
probe: the dense model has l* = 2 (Silent Phase: blocks 0 and 1), the pruned one whatever a test says.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import drtframe.pruning.runner
from drtframe.cli import cli
from drtframe.probing.profile import DecisionProfile, Transition
from test_eval_cli import yaml_task  # noqa: F401  (fixture: a 12-item YAML task)
from test_prune_cli import leftovers


def staged(pruned_transition):
    def probe_profile(handle, items, readout="logit"):
        n = handle.num_layers
        layer = pruned_transition if handle.removed else 2
        transition = Transition(layer, None, 0.3, None) if layer is None else Transition(layer, (layer, layer), 0.3,
                                                                                            (0.3, 0.9))
        return DecisionProfile((0.3,) * (n - 1) + (0.9,), (0.0,) * n, ((1.0,),) * n, (0.0,) * n, transition, len(items))
    return probe_profile


def prune(model, task, out, *args):
    return CliRunner().invoke(cli, ["prune", "-m", str(model), "-O", str(out), "--no-speed", "--guard-benchmark", str(task),
                                    "--guard-eval-items", "2", "--guard-items", "10", *map(str, args)])


@pytest.mark.parametrize("args, named", [
    (["--layers", "0,3"], "removed Silent-Phase blocks 0;"),
    (["--method", "reverse_order", "-k", "2"], "no Silent-Phase block was removed;"),
])
def test_lost_transition_exits_3_and_writes_nothing(args, named, tiny_llama_dir, yaml_task, tmp_path, monkeypatch):
    monkeypatch.setattr(drtframe.pruning.runner, "probe_profile", staged(None))
    out = tmp_path / "out"
    result = prune(tiny_llama_dir, yaml_task, out, *args)
    assert result.exit_code == 3, result.output
    assert "no decision transition on tiny_words validation items 2-11 (dense l* = 2" in result.output
    assert "against the best constant answer's 0.30, which the pruned model does not beat" in result.output
    assert named in result.output and "nothing written" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists() and leftovers(tmp_path) == []


def test_force_writes_and_records_it(tiny_llama_dir, yaml_task, tmp_path, monkeypatch):
    monkeypatch.setattr(drtframe.pruning.runner, "probe_profile", staged(None))
    out = tmp_path / "out"
    result = prune(tiny_llama_dir, yaml_task, out, "--layers", "0,3", "--force")
    assert result.exit_code == 0, result.output
    assert "lost, written anyway" in result.output
    guard = json.loads((out / "drtframe.json").read_text())["decision_guard"]
    assert guard["forced"] and guard["pruned"]["transition_layer"] is None
    assert guard["dense"]["silent_phase"] == [0, 1]


def test_kept_transition_writes_and_records_the_items(tiny_llama_dir, yaml_task, tmp_path, monkeypatch):
    monkeypatch.setattr(drtframe.pruning.runner, "probe_profile", staged(1))
    out = tmp_path / "out"
    assert prune(tiny_llama_dir, yaml_task, out, "--layers", "3").exit_code == 0
    guard = json.loads((out / "drtframe.json").read_text())["decision_guard"]
    assert not guard["forced"] and guard["pruned"]["transition_original_layer"] == 1
    assert guard["items"] == {"benchmark": "tiny_words", "split": "validation", "format": "cloze", "first_item": 2,
                              "last_item": 11, "n": 10, "evaluation_window": [0, 1]}


def test_real_probe_on_a_model_without_a_decision_passes(tiny_llama_dir, yaml_task, tmp_path):
    out = tmp_path / "out"
    result = prune(tiny_llama_dir, yaml_task, out, "--layers", "1")
    assert result.exit_code == 0, result.output
    guard = json.loads((out / "drtframe.json").read_text())["decision_guard"]
    assert guard["dense"]["transition_layer"] is None and guard["items"]["n"] == 10


def test_too_few_guard_items_is_refused_before_loading(tiny_llama_dir, yaml_task, tmp_path):
    result = prune(tiny_llama_dir, yaml_task, tmp_path / "out", "--layers", "1", "--guard-eval-items", "5")
    assert result.exit_code == 2 and "need 15" in result.output


def test_guard_is_on_by_default_with_the_packaged_sample(tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["prune", "-m", str(tiny_llama_dir), "-O", str(out), "--no-speed", "--layers", "1",
                                      "--guard-items", "20"])
    assert result.exit_code == 0, result.output
    assert "not checked: the dense model shows no decision transition on arc_easy validation items 470-489" \
        in " ".join(result.output.split())
    guard = json.loads((out / "drtframe.json").read_text())["decision_guard"]
    assert guard["checked"] is False
    assert guard["items"] == {"benchmark": "arc_easy", "split": "validation", "format": "cloze", "first_item": 470,
                              "last_item": 489, "n": 20, "evaluation_window": [0, 469], "source": "drtframe sample"}


def test_no_guard_turns_it_off(tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["prune", "-m", str(tiny_llama_dir), "-O", str(out), "--no-speed", "--layers", "1",
                                      "--no-guard"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "drtframe.json").read_text())["decision_guard"] is None


@pytest.mark.parametrize("args, message", [
    (["--guard-split", "test"], "--guard-split, --guard-data-dir and --guard-eval-items need --guard-benchmark"),
    (["--guard-eval-items", "10"], "need --guard-benchmark"),
    (["--guard-items", "101"], "the packaged sample has 100 items, so it cannot give 101"),
    (["--no-guard", "--force", "--guard-items", "20"], "--force, --guard-items cannot be used with --no-guard"),
])
def test_bad_guard_options_are_refused(args, message, tiny_llama_dir, tmp_path):
    result = CliRunner().invoke(cli, ["prune", "-m", str(tiny_llama_dir), "-O", str(tmp_path / "o"), "--layers", "1",
                                      *args])
    assert result.exit_code == 2 and message in result.output, result.output
