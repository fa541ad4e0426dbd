"""What installed plugins return and raise is checked where drtframe receives it: one line naming the
plugin and the method, exit status 2, nothing written."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from drtframe.cli import cli
from fake_dists import forget_modules, make_dist
from test_eval_cli import yaml_task  # noqa: F401  (fixture)

SCORER = """
from drtframe import PrunePlan, Schedule, Scorer, hookimpl

class Bad(Scorer):
    '''Returns what the test puts here.'''
    name = "bad"
    def score(self, ctx):
        return {returned}

class Twice(Schedule):
    '''Removes the first current layer k times.'''
    name = "twice"
    def plan(self, scorer, ctx, k, progress=None):
        return PrunePlan(scorer.name, (ctx.handle.kept[0],) * k, (ctx.handle.kept[0],) * k, ())

@hookimpl
def drtframe_register_scorers(register):
    register(Bad)

@hookimpl
def drtframe_register_schedules(register):
    register(Twice)
"""

PROBE = """
from drtframe import Probe, hookimpl

class Bad(Probe):
    '''Returns what the test puts here.'''
    name = "bad_probe"
    def measure(self, ctx):
        n = ctx.handle.num_layers
        return {returned}

@hookimpl
def drtframe_register_probes(register):
    register(Bad)
"""


@pytest.fixture
def install(tmp_path, monkeypatch):
    """Install a distribution 'drtframe-bad' whose module is `code` with {returned} filled in."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(code: str, returned: str) -> str:
        make_dist(site, "drtframe-bad", {"p_bad": code.replace("{returned}", returned)}, {"bad": "p_bad"})
        return str(site / "p_bad.py")

    yield install
    forget_modules(["p_bad"])


def one_line(result) -> str:
    return " ".join(result.output.split())


@pytest.mark.parametrize("returned, problem", [
    ("[0.0, 1.0, 2.0]", "Bad.score returned 3 scores for a model of 5 layers (one per layer)"),
    ("[0.0, 1.0, float('nan'), 3.0, 4.0]", "Bad.score returned nan at position 2 of its scores; "
                                           "each must be a finite Python number"),
    ("[0.0, 1.0, None, 3.0, 4.0]", "Bad.score returned None at position 2 of its scores"),
    ("list(__import__('torch').zeros(5))", "Bad.score returned tensor(0.) at position 0 of its scores; each must be "
                                          "a finite Python number (float(x) or .tolist() turns tensors into them)"),
    ("1 / 0", "Bad.score raised ZeroDivisionError: division by zero (at {file}:8)"),
])
def test_a_scorer_that_returns_the_wrong_scores_is_named(returned, problem, install, tiny_llama_dir, tmp_path):
    file = install(SCORER, returned)
    out = tmp_path / "pruned"
    result = CliRunner().invoke(cli, ["prune", "-m", str(tiny_llama_dir), "--method", "bad", "-k", "2", "--no-guard",
                                      "--no-speed", "-O", str(out)])
    assert result.exit_code == 2
    assert f"Error: scorer 'bad' of plugin 'bad' (drtframe-bad 1.0): {problem.format(file=file)}" in one_line(result)
    assert not out.exists()


def test_a_schedule_whose_plan_repeats_a_layer_is_named(install, tiny_llama_dir):
    install(SCORER, "[0.0] * ctx.handle.num_layers")
    result = CliRunner().invoke(cli, ["score", "-m", str(tiny_llama_dir), "--method", "bad@twice", "-k", "2"])
    assert result.exit_code == 2
    assert ("schedule 'twice' of plugin 'bad' (drtframe-bad 1.0): Twice.plan returned a plan removing layers [0, 0]; "
            "it must remove 2 different layers of ctx.handle.kept (original numbering)") in one_line(result)


@pytest.mark.parametrize("returned, problem", [
    ('{"short": [0.0] * (n - 1)}', "Bad.measure returned 4 values of 'short' for a model of 5 layers"),
    ('{"acc": [0.0] * n}', "Bad.measure returned the metric name 'acc', which is reserved; drtframe reports "
                           "layer, original_layer, acc, decision_margin, option_frequency, entropy itself"),
    ('{"layer": list(range(n))}', "Bad.measure returned the metric name 'layer', which is reserved"),
    ('[0.0] * n', "Bad.measure returned list, not a dict of metric name -> per-layer values"),
    ('{"odd": [object()] * n}', "Bad.measure returned values of 'odd' that JSON cannot hold (Object of type object "
                                "is not JSON serializable)"),
])
def test_a_probe_that_returns_the_wrong_metrics_is_named(returned, problem, install, tiny_llama_dir,
                                                         yaml_task, tmp_path):  # noqa: F811
    install(PROBE, returned)
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(cli, ["probe", "-m", str(tiny_llama_dir), "-b", str(yaml_task),
                                      "--probes", "decision_margin,bad_probe", "-O", str(out)])
    assert result.exit_code == 2
    assert f"Error: probe 'bad_probe' of plugin 'bad' (drtframe-bad 1.0): {problem}" in one_line(result)
    assert not out.exists()


def test_a_plugin_probe_metric_is_reported_and_plotted(install, tiny_llama_dir, yaml_task, tmp_path,  # noqa: F811
                                                       monkeypatch):
    install(PROBE, '{"depth": [i / n for i in range(n)], "count": list(range(n))}')
    drawn = {}
    monkeypatch.setattr("drtframe.probing.plots.plot_profile",
                        lambda profile, path, title, metrics: drawn.update(metrics))
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(cli, ["probe", "-m", str(tiny_llama_dir), "-b", str(yaml_task), "-O", str(out),
                                      "--probes", "decision_margin,option_frequency,bad_probe",
                                      "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert [row["depth"] for row in json.loads(out.read_text())["layers"]] == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert drawn == {"depth": [0.0, 0.2, 0.4, 0.6, 0.8], "count": [0, 1, 2, 3, 4]}
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    assert rows[-1][0] == "4" and rows[-1][-2:] == ["0.800", "4.000"]  # the table shows them too


def test_the_profile_plot_draws_other_metrics_in_a_third_panel(tmp_path):
    import matplotlib.image

    from drtframe.probing.plots import plot_profile
    from drtframe.probing.profile import decision_profile
    from test_probes import synthetic

    profile = decision_profile(*synthetic(decide_from=4))
    plot_profile(profile, tmp_path / "two.png", "t")
    plot_profile(profile, tmp_path / "three.png", "t", {"depth": [i / 10 for i in range(profile.num_layers)]})
    two, three = (matplotlib.image.imread(tmp_path / f"{n}.png") for n in ("two", "three"))
    assert three.shape[0] > two.shape[0]
