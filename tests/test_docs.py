"""Meta-tests: every hook is documented and exercised, and the plugin tutorial's plugin works."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from click.testing import CliRunner

from drtframe.cli import cli
from drtframe.plugin_system import hookspecs
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
    from drtframe.plugin_system.manager import Registry, plugin_manager

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


def section(doc: str, heading: str) -> str:
    return (DOCS / doc).read_text().split(heading)[1].split("\n## ")[0]


def table_after(text: str, marker: str) -> list[list[str]]:
    """The cells of the markdown table that follows `marker`, header and rule left out."""
    lines = text.split(marker)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[start + 2:end]]


def test_the_builtin_entry_points_are_documented_with_what_they_register(registry):
    rows = table_after((DOCS / "hooks.md").read_text(), "<!-- builtin-entry-points")
    documented = {row[0].strip("`"): row[1] for row in rows}
    declared = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())["project"]["entry-points"]["drtframe"]
    assert set(documented) == set(declared)
    for plugin, registers in documented.items():
        if not registers.startswith("every"):
            names = set(re.findall(r"`([^`]+)`", registers))
            assert names == {e.name for e in registry.entries() if e.plugin == plugin}, plugin


def test_the_yaml_keys_table_lists_every_supported_key():
    from drtframe.evaluation.yaml_task import KNOWN, REQUIRED

    rows = table_after((DOCS / "hooks.md").read_text(), "<!-- yaml-keys")
    keys = {key.strip("` ") for row in rows for key in row[0].split(",")}
    assert keys == KNOWN
    assert {row[0].strip("`") for row in rows if row[1] == "yes"} == {*REQUIRED, "dataset_path"}


def test_the_packaged_data_benchmark_example_evaluates_its_one_split(tmp_path, monkeypatch, tiny_llama_dir):
    module = code_blocks(section("hooks.md", "## drtframe_register_benchmarks(register)"), "python")[1]
    rows = [{"riddle": f"w{i} w{i + 1}", "options": [f"w{i + 2}", f"w{i + 3}"], "answer": i % 2} for i in range(10)]
    (tmp_path / "riddles-validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.syspath_prepend(str(tmp_path))
    make_dist(tmp_path, "drtframe-riddles", {"doc_riddles": module}, {"riddles": "doc_riddles"})
    try:
        out = tmp_path / "results.json"
        result = CliRunner().invoke(cli, ["eval", "-m", str(tiny_llama_dir), "-b", "my_riddles",
                                          "--split", "validation", "-O", str(out)])
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["results"]["my_riddles"]["n"] == 10
        other = CliRunner().invoke(cli, ["eval", "-m", str(tiny_llama_dir), "-b", "my_riddles", "--split", "test"])
        assert other.exit_code == 2
        assert (f"my_riddles reads its validation items from {tmp_path / 'riddles-validation.jsonl'} and has no "
                f"'test' split") in " ".join(other.output.split())
    finally:
        forget_modules(["doc_riddles"])


def test_the_command_reference_is_generated_from_the_click_definitions():
    from drtframe.cli.reference import render

    assert (DOCS / "cli.md").read_text() == render(), \
        "docs/cli.md is stale: regenerate it with python -m drtframe.cli.reference > docs/cli.md"
