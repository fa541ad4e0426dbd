"""The plugin manager: registration, entry points, failures, conflicts, blocking, `drtframe plugins`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import drtframe
from drtframe.cli import cli
from drtframe.errors import DrtframeError, DrtframeWarning
from drtframe.plugin_system.hookspecs import hookimpl
from drtframe.plugin_system.kinds import KINDS
from drtframe.plugin_system.manager import PluginManager, Registry, plugin_manager
from drtframe.scoring.methods import resolve_method
from fake_dists import forget_modules, make_dist

SCORER_PLUGIN = """
from drtframe import Scorer, hookimpl

class Middle(Scorer):
    '''Prefers the middle layers.'''
    name = "{name}"
    def score(self, ctx):
        n = ctx.handle.num_layers
        return [abs(i - n / 2) for i in range(n)]

@hookimpl
def drtframe_register_scorers(register):
    register(Middle)
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path where fake distributions can be installed."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    forget_modules(["p_good", "p_broken", "p_raises", "p_typo", "p_dup"])


def test_inline_plugin_registers_each_kind():
    class Zero(drtframe.Scorer):
        """Scores every layer zero."""
        name = "zero"

        def score(self, ctx):
            return [0.0] * ctx.handle.num_layers

    class Plugin:
        @hookimpl
        def drtframe_register_scorers(self, register):
            register(Zero)

        @hookimpl
        def drtframe_register_architectures(self, register):
            register(drtframe.Architecture("toy", "A toy", ("toy",), "layers", None))

    pm = plugin_manager(load_entry_points=False)
    assert pm.register_plugin(Plugin(), "inline")
    registry = Registry(pm)
    assert registry.get("scorer", "zero") is Zero
    assert registry.entries("scorer")[0].description == "Scores every layer zero."
    assert registry.names("architecture") == ["toy"]


def test_builtins_come_through_entry_points(registry):
    entries = {e.name: e for e in registry.entries()}
    for name in ("reverse_order", "random", "one_shot", "iterative", "contiguous", "llama-like"):
        assert entries[name].distribution == "drtframe"
        assert entries[name].plugin in ("baselines", "schedules", "architectures")


def test_builtin_plugins_import_only_the_public_api():
    """The built-in methods are written as a third-party plugin would be: against the names `drtframe`
    exports, never its internal modules (which may move)."""
    import ast
    from pathlib import Path

    for path in sorted((Path(__file__).parents[1] / "plugins").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
                if node.module == "drtframe":
                    assert {alias.name for alias in node.names} <= set(drtframe.__all__), (path.name, node.lineno)
            else:
                modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            internal = [m for m in modules if m.startswith("drtframe.")]
            assert not internal, f"{path.name}:{node.lineno} imports {internal}"


def test_third_party_plugin_is_listed_with_its_distribution(site):
    make_dist(site, "drtframe-middle", {"p_good": SCORER_PLUGIN.format(name="middle")}, {"middle": "p_good"}, "2.3")
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "Prefers the middle layers." in line)
    assert row.split()[:2] == ["middle", "middle"]
    assert "  middle: drtframe-middle 2.3\n" in result.output


DOCUMENTED_PLUGIN = """
from pydantic import Field
from drtframe import Options, Scorer, hookimpl

class WideOptions(Options):
    power: int = Field(2, description="Exponent of the distance from the middle.")

class Wide(Scorer):
    '''Prefers the middle layers, and says so at a length no terminal line holds, on and on and on.

    The second paragraph of the docstring, shown only in full.
    '''
    name = "wide_middle"
    Options = WideOptions
    def score(self, ctx):
        return [0.0] * ctx.handle.num_layers

@hookimpl
def drtframe_register_scorers(register):
    register(Wide)
"""


def test_the_listing_fits_80_columns_grouped_by_kind_with_mmlu_folded(site, monkeypatch):
    from drtframe.cli.console import out

    make_dist(site, "drtframe-a-very-long-distribution-name", {"p_good": DOCUMENTED_PLUGIN}, {"wide": "p_good"})
    monkeypatch.setattr(out, "width", 80)
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    headings = [line.strip() for line in lines if line and not line.startswith(" ") and "'" not in line
                and not line.startswith("second")]
    assert headings == [f"{kind}s" for kind in KINDS] + ["plugins from other distributions"]
    assert [line.split()[0] for line in lines if "mmlu" in line] == ["mmlu", "mmlu_*"]
    assert "57 more: mmlu_" in result.output
    assert len(lines) < 50
    row = next(line for line in lines if "wide_middle" in line)
    assert row.rstrip().endswith("…")

    schedules = CliRunner().invoke(cli, ["plugins", "--kind", "schedule"])
    assert "iterative" in schedules.output and "block_influence" not in schedules.output
    assert "scorers" not in schedules.output


def test_one_entry_shows_its_options_and_docstring(site):
    make_dist(site, "drtframe-wide", {"p_good": DOCUMENTED_PLUGIN}, {"wide": "p_good"}, "0.4")
    result = CliRunner().invoke(cli, ["plugins", "wide_middle"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "wide_middle (scorer) provided by plugin 'wide' (drtframe-wide 0.4)" in text
    assert "default_schedule: one_shot" in text and "needs_calibration: False" in text
    assert "options (-o KEY=VALUE) power: integer = 2 Exponent of the distance from the middle." in text
    assert "The second paragraph of the docstring, shown only in full." in text
    unknown = CliRunner().invoke(cli, ["plugins", "wide_midle"])
    assert unknown.exit_code == 2 and "did you mean 'wide_middle'?" in unknown.output


def test_json_lists_every_entry_unfolded_with_options_and_failures(site):
    make_dist(site, "drtframe-wide", {"p_good": DOCUMENTED_PLUGIN, "p_broken": "import no_such_module_anywhere\n"},
              {"wide": "p_good", "broken": "p_broken"}, "0.4")
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    names = {e["name"]: e for e in data["entries"]}
    assert len([n for n in names if n.startswith("mmlu_")]) == 57
    assert names["wide_middle"]["distribution"] == "drtframe-wide" and names["wide_middle"]["version"] == "0.4"
    assert names["wide_middle"]["options"] == {"power": {"default": 2, "type": "integer",
                                                         "description": "Exponent of the distance from the middle."}}
    assert names["llama-like"]["facts"]["layers_path"] == "model.layers"
    assert [(f["plugin"], f["distribution"]) for f in data["failures"]] == [("broken", "drtframe-wide")]
    one = json.loads(CliRunner().invoke(cli, ["plugins", "iterative", "--json"]).output)
    assert [e["name"] for e in one["entries"]] == ["iterative"]


def test_broken_plugins_are_reported_with_file_and_line_and_the_rest_still_load(site):
    make_dist(site, "drtframe-broken", {
        "p_broken": "import no_such_module_anywhere\n",
        "p_raises": "from drtframe import hookimpl\n@hookimpl\ndef drtframe_register_scorers(register):\n"
                    "    raise RuntimeError('boom at register')\n",
        "p_typo": "from drtframe import hookimpl\n@hookimpl\ndef drtframe_register_scorer(register):\n    pass\n",
    }, {"broken": "p_broken", "raises": "p_raises", "typo": "p_typo"})
    pm = plugin_manager()
    registry = Registry(pm)
    failures = {f.plugin: f for f in registry.failures}
    assert failures["broken"].error == (f"ModuleNotFoundError: No module named 'no_such_module_anywhere' "
                                        f"(at {site / 'p_broken.py'}:1)")
    assert failures["raises"].error == (f"drtframe_register_scorers: RuntimeError: boom at register "
                                        f"(at {site / 'p_raises.py'}:4)")
    assert failures["typo"].error == ("unknown hook 'drtframe_register_scorer' "
                                      "(did you mean 'drtframe_register_scorers'?)")
    assert all(f.distribution == "drtframe-broken" for f in failures.values())
    assert "reverse_order" in registry.names("scorer")

    result = CliRunner().invoke(cli, ["plugins"], terminal_width=250)
    assert result.exit_code == 0
    assert "failed to load" in result.output and "boom at register" in result.output
    assert "reverse_order" in result.output


def test_an_unknown_name_says_which_plugins_failed_to_load(site, tiny_llama_dir):
    make_dist(site, "drtframe-typo", {"p_typo": """
        from drtframe import Scorer, hookimpl

        class Zero(Scorer):
            name = "zero_typo"
            def score(self, ctx):
                return [0.0] * ctx.handle.num_layers

        @hookimpl
        def drtframe_register_scorer(register):
            register(Zero)
        """}, {"typo": "p_typo"})
    result = CliRunner().invoke(cli, ["score", "-m", str(tiny_llama_dir), "--method", "zero_typo"])
    assert result.exit_code == 2
    assert ("unknown scorer 'zero_typo'; plugin 'typo' failed to load: unknown hook 'drtframe_register_scorer' "
            "(did you mean 'drtframe_register_scorers'?)") in " ".join(result.output.split())


def test_a_name_taken_by_a_builtin_fails_the_newcomer_and_everything_it_registers(site, tiny_llama_dir):
    """The plugin sorts before the built-in 'similarity' by name; the built-in still keeps its name."""
    make_dist(site, "drtframe-dup", {"p_dup": SCORER_PLUGIN.format(name="block_influence") + """
class Mine(Middle):
    name = "mine"

@hookimpl
def drtframe_register_schedules(register):
    register(Mine)
"""}, {"aaa_dup": "p_dup"})
    registry = Registry(plugin_manager())
    assert registry.entry("scorer", "block_influence").plugin == "similarity"
    assert "mine" not in registry.names("schedule")
    failure = next(f for f in registry.failures if f.plugin == "aaa_dup")
    assert failure.error.startswith("scorer name 'block_influence' is taken by plugin 'similarity' (drtframe ")
    assert "DRTFRAME_BLOCK_PLUGINS" in failure.error

    listing = CliRunner().invoke(cli, ["plugins"])
    assert listing.exit_code == 0 and "aaa_dup" in listing.output and "block_influence" in listing.output
    result = CliRunner().invoke(cli, ["score", "-m", str(tiny_llama_dir), "--method", "reverse_order@mine"])
    assert result.exit_code == 2
    assert "plugin 'aaa_dup' failed to load: scorer name 'block_influence' is taken" in " ".join(result.output.split())


def test_between_two_plugins_the_first_registrant_keeps_the_name(site):
    make_dist(site, "drtframe-one", {"p_good": SCORER_PLUGIN.format(name="same")}, {"one": "p_good"})
    make_dist(site, "drtframe-two", {"p_dup": SCORER_PLUGIN.format(name="same")}, {"two": "p_dup"})
    registry = Registry(plugin_manager())
    assert registry.entry("scorer", "same").distribution == "drtframe-one"
    assert [(f.plugin, f.distribution) for f in registry.failures] == [("two", "drtframe-two")]
    assert "taken by plugin 'one' (drtframe-one 1.0)" in registry.failures[0].error


def test_a_plugin_that_fails_halfway_leaves_nothing_registered(site):
    make_dist(site, "drtframe-half", {"p_broken": SCORER_PLUGIN.format(name="first_half") + """
class Nameless:
    pass

@hookimpl
def drtframe_register_schedules(register):
    register(Nameless)
"""}, {"half": "p_broken"})
    registry = Registry(plugin_manager())
    assert "first_half" not in registry.names("scorer")
    (failure,) = registry.failures
    assert failure.plugin == "half" and "has no 'name'" in failure.error
    assert failure.error.endswith(f"(at {site / 'p_broken.py'}:20)")


def test_a_blocked_name_that_matches_no_plugin_is_warned_about(monkeypatch):
    monkeypatch.setenv("DRTFRAME_BLOCK_PLUGINS", "similarty")
    with pytest.warns(DrtframeWarning, match="'similarty', which is no installed plugin's entry point; "
                                             "did you mean 'similarity'"):
        registry = Registry(plugin_manager())
    assert "block_influence" in registry.names("scorer")
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0 and "Warning: DRTFRAME_BLOCK_PLUGINS names 'similarty'" in result.output


def test_environment_variable_blocks_plugins(monkeypatch):
    monkeypatch.setenv("DRTFRAME_BLOCK_PLUGINS", "baselines, schedules")
    registry = Registry(plugin_manager())
    assert "reverse_order" not in registry.names("scorer")
    assert not {"one_shot", "iterative", "contiguous"} & set(registry.names("schedule"))
    assert "llama-like" in registry.names("architecture")


def test_unknown_method_suggests_close_names(registry):
    with pytest.raises(DrtframeError, match="did you mean 'reverse_order'"):
        resolve_method(registry, "revers_order")
    with pytest.raises(DrtframeError, match="did you mean 'iterative'"):
        resolve_method(registry, "random@iterativ")


def test_method_options_are_validated(registry):
    assert resolve_method(registry, "random", {"seed": "7"}).scorer.options.seed == 7
    assert resolve_method(registry, "random@iterative").name == "random@iterative"
    with pytest.raises(DrtframeError, match="did you mean 'seed'"):
        resolve_method(registry, "random", {"sed": "7"})
    with pytest.raises(DrtframeError, match="option 'seed' of random"):
        resolve_method(registry, "random", {"seed": "many"})


def test_plugin_manager_is_fresh_each_time():
    assert plugin_manager(load_entry_points=False).get_plugins() == set()
    assert isinstance(plugin_manager(), PluginManager)
