"""Meta-tests: every hook is documented and exercised, and the plugin tutorial's plugin works."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from click.testing import CliRunner

from drtframe import hookspecs
from drtframe.cli import cli
from fake_dists import forget_modules, make_dist

DOCS = Path(__file__).resolve().parents[1] / "docs"
HOOKS = [name for name in dir(hookspecs) if name.startswith("drtframe_")]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_every_hook_has_a_documented_heading_with_an_example():
    text = (DOCS / "hooks.md").read_text()
    for hook in HOOKS:
        assert f"## {hook}(register)" in text, hook
        section = text.split(f"## {hook}(register)")[1].split("\n## ")[0]
        assert f"def {hook}(register)" in section, f"{hook} has no example"


def test_every_hook_example_registers_through_the_plugin_manager(tmp_path, monkeypatch):
    """Each documented example is installed as a plugin; what it registers shows up in the registry."""
    from drtframe.plugins import Registry, plugin_manager

    monkeypatch.syspath_prepend(str(tmp_path))
    text = (DOCS / "hooks.md").read_text()
    modules = {}
    for hook in HOOKS:
        section = text.split(f"## {hook}(register)")[1].split("\n## ")[0]
        modules[f"doc_{hook}"] = code_blocks(section, "python")[0]
    make_dist(tmp_path, "drtframe-doc-examples", modules, {m: m for m in modules})
    try:
        registry = Registry(plugin_manager())
        assert not [f for f in registry.failures if f.plugin.startswith("doc_")]
        names = {(e.kind, e.name) for e in registry.entries() if e.plugin.startswith("doc_")}
        assert names == {("scorer", "last_first"), ("schedule", "lowest_first"), ("probe", "gold_logprob"),
                         ("benchmark", "my_copa"), ("architecture", "falcon"), ("healer", "scale_down")}
    finally:
        forget_modules(modules)


def test_tutorial_plugin_installs_and_prunes(tmp_path, monkeypatch, tiny_llama_dir):
    text = (DOCS / "plugin-tutorial.md").read_text()
    module = code_blocks(text, "python")[0]
    project = tomllib.loads(code_blocks(text, "toml")[0])["project"]
    monkeypatch.syspath_prepend(str(tmp_path))
    make_dist(tmp_path, project["name"], {"drtframe_weightnorm": module},
              project["entry-points"]["drtframe"], project["version"])
    try:
        listing = CliRunner().invoke(cli, ["plugins"])
        assert "weight_norm" in listing.output and "drtframe-weightnorm" in listing.output
        out = tmp_path / "pruned"
        result = CliRunner().invoke(cli, ["prune", "-m", str(tiny_llama_dir), "--method", "weight_norm@iterative",
                                          "-o", "squared=false", "--remove", "2", "-O", str(out), "--no-speed"])
        assert result.exit_code == 0, result.output
        assert (out / "drtframe.json").exists()
    finally:
        forget_modules(["drtframe_weightnorm"])
