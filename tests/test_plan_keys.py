"""A cached plan (and a healed cell) is keyed by its plugin's code, not only its name and options: editing
an installed plugin's module and rerunning `compare` into the same directory recomputes what that module
computed, and reuses everything else."""

from __future__ import annotations

import hashlib
import sys

import pytest
from click.testing import CliRunner

import drtframe
from conftest import WIKITEXT_HEAD
from drtframe.cli import cli
from drtframe.comparison.request import CompareRequest
from drtframe.comparison.runner import compare
from drtframe.models.loading import ModelSpec
from drtframe.plugin_system.manager import Registry, code_identity, load_registry, plugin_manager
from drtframe.scoring.calibration import CalibrationSpec
from fake_dists import forget_modules, make_dist

# Scores put block FIRST lowest, then the other blocks in index order: one_shot removes FIRST at K = 1 and
# {0, 1} at K = 2 either way, so an edit changes one of the three removed sets.
SCORER_MODULE = """
from drtframe import Scorer, hookimpl

class FirstThenInOrder(Scorer):
    '''Removes block FIRST, then the others from the front.'''
    name = "edited"
    def score(self, ctx):
        return [-1.0 if i == FIRST else float(i) for i in range(len(ctx.handle.kept))]

@hookimpl
def drtframe_register_scorers(register):
    register(FirstThenInOrder)
"""

HEALER_MODULE = """
from drtframe import hookimpl
from drtframe_plugins.healing import LinearLS

class EditedLS(LinearLS):
    '''linear_ls under another name, in a module the test edits.'''
    name = "edited_ls"

@hookimpl
def drtframe_register_healers(register):
    register(EditedLS)
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path where the fake distributions are installed."""
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (tmp_path / "site").mkdir()
    yield tmp_path / "site"
    forget_modules(["p_replan", "p_reheal"])


def request(model_dir, out, methods=("edited", "reverse_order"), budgets=(1, 2), heal=("none",)) -> CompareRequest:
    return CompareRequest(ModelSpec(str(model_dir)), methods, budgets, ("arc_easy",), limit=4,
                          calibration=CalibrationSpec(str(WIKITEXT_HEAD), 2, 16), guard=None, output_dir=out,
                          heal=heal)


def edit(site, module: str, old: str, new: str, reimport: bool = True) -> None:
    """Rewrite `module`'s source (its length changes, so Python's bytecode cache cannot hide the edit);
    `reimport` drops the loaded module, as a new process would not have it."""
    path = site / f"{module}.py"
    source = path.read_text()
    assert old in source
    path.write_text(source.replace(old, new))
    if reimport:
        forget_modules([module])


def test_a_plugin_class_is_identified_by_its_distribution_and_its_module_source(site):
    make_dist(site, "drtframe-replan", {"p_replan": SCORER_MODULE.replace("FIRST", "0")}, {"replan": "p_replan"}, "2.5")
    registry = load_registry()
    edited = registry.get("scorer", "edited")
    source = hashlib.sha256((site / "p_replan.py").read_bytes()).hexdigest()
    assert code_identity(edited) == {"distribution": "drtframe-replan", "version": "2.5", "source": source}
    builtin = code_identity(registry.get("scorer", "reverse_order"))
    assert builtin["distribution"] == "drtframe" and builtin["version"] == drtframe.__version__
    # registering the module by hand, with no distribution, does not hide the one recorded
    by_hand = plugin_manager(load_entry_points=False)
    by_hand.register_plugin(sys.modules["p_replan"], "by-hand")
    assert Registry(by_hand).get("scorer", "edited") is edited
    assert code_identity(edited)["distribution"] == "drtframe-replan"
    nowhere = type("Nowhere", (), {"__module__": "no_such_module"})
    assert code_identity(nowhere) == {"distribution": "-", "version": "-",
                                      "source": "no source file: no_such_module.Nowhere"}


def test_editing_a_plugin_re_plans_its_method_and_reuses_everything_else(site, tiny_llama_dir, tmp_path):
    make_dist(site, "drtframe-replan", {"p_replan": SCORER_MODULE.replace("FIRST", "0")}, {"replan": "p_replan"})
    out = tmp_path / "out"
    first = compare(request(tiny_llama_dir, out))
    assert first.methods[0].order == (0, 1) and first.methods[1].order == (4, 3)
    assert (first.computed, first.from_cache) == (2 + 5, 0)  # two plans; cells of (), (0,), (0, 1), (4,), (3, 4)
    plans = {p.name: p.read_text() for p in (out / "cache" / "sequences").glob("*.json")}

    again = compare(request(tiny_llama_dir, out))
    assert (again.computed, again.from_cache) == (0, 7)

    # The edit is not seen while the old code is what runs: what it plans is still right.
    edit(site, "p_replan", "i == 0", "i == 1", reimport=False)
    assert compare(request(tiny_llama_dir, out)).computed == 0

    forget_modules(["p_replan"])  # a new process runs the edited code
    edited = compare(request(tiny_llama_dir, out))
    assert edited.methods[0].order == (1, 0) and edited.methods[1].order == (4, 3)
    # the edited method's plan and the one new removed set, (1,); reverse_order's plan and the cells of
    # (), (0, 1), (4,), (3, 4) are read from the cache
    assert (edited.computed, edited.from_cache) == (2, 5)
    after = {p.name: p.read_text() for p in (out / "cache" / "sequences").glob("*.json")}
    assert len(after) == 3 and {name: after[name] for name in plans} == plans

    # Even a comment re-plans (the key has the module's bytes), and only the plan: its removals are the same.
    edit(site, "p_replan", "class FirstThenInOrder", "# a comment\nclass FirstThenInOrder")
    commented = compare(request(tiny_llama_dir, out))
    assert (commented.computed, commented.from_cache) == (1, 6)

    # The CLI keys the same way: a rerun of the same grid reads all seven pieces.
    cli_rerun = CliRunner().invoke(cli, [
        "compare", "-m", str(tiny_llama_dir), "--methods", "edited,reverse_order", "-k", "1,2", "-b", "arc_easy",
        "--limit", "4", "--no-guard", "--calibration", str(WIKITEXT_HEAD), "--n-samples", "2", "--seq-len", "16",
        "-O", str(out)])
    assert cli_rerun.exit_code == 0, cli_rerun.output
    assert "0 pieces of work computed, 7 read from the cache" in cli_rerun.output


def test_editing_a_healer_recomputes_its_healed_cells_only(site, tiny_llama_dir, tmp_path):
    make_dist(site, "drtframe-reheal", {"p_reheal": HEALER_MODULE}, {"reheal": "p_reheal"})
    out = tmp_path / "out"
    grid = request(tiny_llama_dir, out, methods=("reverse_order",), budgets=(1,), heal=("none", "edited_ls"))
    first = compare(grid)
    assert (first.computed, first.from_cache) == (1 + 2 + 1, 0)  # the plan; cells of () and (4,); (4,) healed
    edit(site, "p_reheal", "class EditedLS", "# a comment\nclass EditedLS")
    again = compare(grid)
    assert (again.computed, again.from_cache) == (1, 3)
