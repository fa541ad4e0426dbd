"""The plugin manager: registration, entry points, failures, conflicts, blocking, `drtframe plugins`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import drtframe
from drtframe.cli import cli
from drtframe.errors import DrtframeError
from drtframe.hookspecs import hookimpl
from drtframe.methods import resolve_method
from drtframe.plugins import PluginManager, Registry, plugin_manager
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


def test_third_party_plugin_is_listed_with_its_distribution(site):
    make_dist(site, "drtframe-middle", {"p_good": SCORER_PLUGIN.format(name="middle")}, {"middle": "p_good"}, "2.3")
    result = CliRunner().invoke(cli, ["plugins"], terminal_width=200)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "middle" in line)
    assert "drtframe-middle" in row and "2.3" in row and "Prefers the middle layers." in row


def test_broken_plugins_are_reported_and_the_rest_still_load(site):
    make_dist(site, "drtframe-broken", {
        "p_broken": "import no_such_module_anywhere\n",
        "p_raises": "from drtframe import hookimpl\n@hookimpl\ndef drtframe_register_scorers(register):\n"
                    "    raise RuntimeError('boom at register')\n",
        "p_typo": "from drtframe import hookimpl\n@hookimpl\ndef drtframe_register_scorer(register):\n    pass\n",
    }, {"broken": "p_broken", "raises": "p_raises", "typo": "p_typo"})
    pm = plugin_manager()
    registry = Registry(pm)
    failures = {f.plugin: f for f in registry.failures}
    assert "no_such_module_anywhere" in failures["broken"].error
    assert "boom at register" in failures["raises"].error
    assert "drtframe_register_scorer" in failures["typo"].error
    assert all(f.distribution == "drtframe-broken" for f in failures.values())
    assert "reverse_order" in registry.names("scorer")

    result = CliRunner().invoke(cli, ["plugins"], terminal_width=250)
    assert result.exit_code == 0
    assert "failed to load" in result.output and "boom at register" in result.output
    assert "reverse_order" in result.output


def test_two_distributions_registering_one_name_is_a_clear_error(site):
    make_dist(site, "drtframe-one", {"p_good": SCORER_PLUGIN.format(name="same")}, {"one": "p_good"})
    make_dist(site, "drtframe-two", {"p_dup": SCORER_PLUGIN.format(name="same")}, {"two": "p_dup"})
    with pytest.raises(DrtframeError) as info:
        Registry(plugin_manager())
    assert "drtframe-one" in str(info.value) and "drtframe-two" in str(info.value) and "'same'" in str(info.value)
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 2 and "registered twice" in result.output


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
