"""Executors: a grid on a local 2-CPU Ray cluster gives the local executor's results.csv exactly, a
worker killed mid-task is replaced and its task retried, and a task that raises is reported while
the rest of the grid goes on (on both executors)."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import WIKITEXT_HEAD
from drtframe.cli import cli
from drtframe.comparison.request import CompareRequest
from drtframe.comparison.runner import compare
from drtframe.execution import LocalExecutor, make_executor
from drtframe.models.loading import ModelSpec
from drtframe.plugin_system.manager import load_registry
from drtframe.scoring.calibration import CalibrationSpec
from drtframe.scoring.calibration_items import ItemWindow
from fake_dists import forget_modules, make_dist

ray = pytest.importorskip("ray")

FAULTS = '''
import os, time
from drtframe import Healer, Scorer, hookimpl


class SlowReverse(Scorer):
    """Reverse order, but its first call on a Ray worker writes its pid and waits to be killed."""

    name = "slow_reverse"

    def score(self, ctx):
        mark = os.environ.get("DRTFRAME_TEST_PID_FILE")
        if mark and not os.path.exists(mark):
            with open(mark + ".tmp", "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(mark + ".tmp", mark)
            time.sleep(60)
        return [-float(i) for i in ctx.handle.kept]


class Broken(Scorer):
    name = "broken"

    def score(self, ctx):
        raise RuntimeError("broken on purpose")


class BrokenHealer(Healer):
    name = "broken_healer"

    def heal(self, ctx):
        raise ValueError("cannot heal on purpose")


@hookimpl
def drtframe_register_scorers(register):
    register(SlowReverse)
    register(Broken)


@hookimpl
def drtframe_register_healers(register):
    register(BrokenHealer)
'''


@pytest.fixture(scope="session")
def fault_plugins(tmp_path_factory):
    """A throwaway plugin distribution with a slow scorer, a broken scorer and a broken healer."""
    root = tmp_path_factory.mktemp("fault-plugins")
    make_dist(root, "drtframe-faults", {"drtframe_faults": FAULTS}, {"faults": "drtframe_faults"})
    return root


@pytest.fixture(scope="session")
def ray_cluster(fault_plugins, tmp_path_factory):
    """One local 2-CPU Ray cluster shared by these tests; its workers can import the fault plugins."""
    pid_file = tmp_path_factory.mktemp("pids") / "slow.pid"
    path = os.pathsep.join(filter(None, [str(fault_plugins), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "DRTFRAME_TEST_PID_FILE": str(pid_file),
                                       "OMP_NUM_THREADS": "1"}})
    yield pid_file
    ray.shutdown()


@pytest.fixture
def faults_registry(fault_plugins, monkeypatch):
    """This process's registry with the fault plugins installed."""
    monkeypatch.syspath_prepend(str(fault_plugins))
    yield load_registry()
    forget_modules(["drtframe_faults"])


def grid(model_dir, out, methods=("block_influence", "reverse_order", "perplexity"), heal=("none", "linear_ls"),
         benchmarks=("arc_easy", "piqa")):
    return CompareRequest(ModelSpec(str(model_dir)), methods, (1, 2), benchmarks, limit=5,
                          calibration=CalibrationSpec(str(WIKITEXT_HEAD), 2, 16), guard=ItemWindow.sample(8),
                          output_dir=out, heal=heal)


def same_results(local: Path, remote: Path) -> None:
    """The same results.csv but for the KL divergence's last bits: a Ray worker's one thread sums float32 in
    another order than this process's threads, and KL magnifies log-likelihoods' last-bit differences."""
    rows = [list(csv.DictReader((where / "results.csv").open())) for where in (local, remote)]
    assert [{**r, "kl": ""} for r in rows[1]] == [{**r, "kl": ""} for r in rows[0]]
    assert [float(r["kl"] or 0) for r in rows[1]] == pytest.approx([float(r["kl"] or 0) for r in rows[0]], abs=1e-9)


def test_a_ray_run_gives_the_local_results_exactly(tiny_llama_dir, tmp_path, ray_cluster, registry):
    benchmarks = ("arc_easy", "piqa", "lambada_openai")  # a perplexity benchmark's cells too, healed and not
    local = compare(grid(tiny_llama_dir, tmp_path / "local", benchmarks=benchmarks), registry)
    remote = compare(grid(tiny_llama_dir, tmp_path / "ray", benchmarks=benchmarks), registry,
                     executor=make_executor("ray", workers=2))
    assert remote.executor == {"name": "ray", "workers": 2, "workers_lost": 0}
    assert not remote.failures and not local.failures
    same_results(tmp_path / "local", tmp_path / "ray")
    assert remote.from_cache == 0 and remote.computed == local.computed
    # the cache is the local executor's: a local rerun over the Ray run's directory computes nothing
    again = compare(grid(tiny_llama_dir, tmp_path / "ray", benchmarks=benchmarks), registry)
    assert again.computed == 0


def test_a_worker_killed_mid_task_is_replaced_and_the_task_retried(tiny_llama_dir, tmp_path, ray_cluster,
                                                                    faults_registry):
    pid_file = ray_cluster
    pid_file.unlink(missing_ok=True)
    killed = []

    def kill_when_slow():
        for _ in range(1200):
            if pid_file.exists():
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_slow)
    killer.start()
    executor = make_executor("ray", workers=2)
    methods = ("slow_reverse", "block_influence")
    result = compare(grid(tiny_llama_dir, tmp_path / "ray", methods, ("none",)), faults_registry, executor=executor)
    killer.join()
    assert killed and executor.lost == 1
    assert not result.failures and all(m.error is None for m in result.methods)
    local = compare(grid(tiny_llama_dir, tmp_path / "local", methods, ("none",)), faults_registry)
    import difflib; print("\n".join(difflib.unified_diff((tmp_path / "local" / "results.csv").read_text().splitlines(), (tmp_path / "ray" / "results.csv").read_text().splitlines(), lineterm="")))
    same_results(tmp_path / "local", tmp_path / "ray")
    assert local.methods[0].removed == {1: (4,), 2: (3, 4)}


@pytest.mark.parametrize("where", ["local", "ray"])
def test_a_task_that_raises_is_reported_and_the_rest_goes_on(where, tiny_llama_dir, tmp_path, request,
                                                             faults_registry):
    executor = LocalExecutor() if where == "local" else (request.getfixturevalue("ray_cluster"),
                                                         make_executor("ray", workers=2))[1]
    out = tmp_path / "out"
    result = compare(grid(tiny_llama_dir, out, ("broken", "reverse_order"), ("none", "broken_healer")),
                     faults_registry, executor=executor)
    broken, reverse = result.methods
    assert "Broken.score raised RuntimeError: broken on purpose (at " in broken.error and "drtframe_faults.py:" in broken.error
    assert reverse.error is None and result.cell(reverse, 2, "piqa")["n"] == 5
    healed_errors = {key: e for key, e in result.failures.items() if key[1] == "broken_healer"}
    assert len(healed_errors) == 2 * 3  # (4,) and (3, 4), each on the guard items and two benchmarks
    assert all("ValueError: cannot heal on purpose" in e for e in healed_errors.values())
    rows = [r for r in (out / "results.csv").read_text().splitlines() if ",broken" in r]
    assert rows and all(",error," in r for r in rows)
    data = json.loads((out / "results.json").read_text())
    assert data["methods"][0]["error"] == broken.error and len(data["failures"]) == 6
    # failures are not cached: a rerun tries them again, and reads the rest from the cache
    again = compare(grid(tiny_llama_dir, out, ("broken", "reverse_order"), ("none", "broken_healer")),
                    faults_registry)
    assert again.computed == 1 + 6  # the broken plan and the six pieces of the two broken heals
    assert again.from_cache == result.computed + result.from_cache - 7


def test_the_cli_shows_errors_in_the_table_and_refuses_bad_executor_settings(tiny_llama_dir, tmp_path,
                                                                             faults_registry, monkeypatch):
    args = ["compare", "--model", str(tiny_llama_dir), "--methods", "broken,reverse_order", "-k", "1", "--limit", "4",
            "--no-guard", "-O", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "error" in result.output and "broken: planning failed: scorer 'broken'" in result.output
    bad = CliRunner().invoke(cli, args + ["--workers", "2"])
    assert bad.exit_code == 2 and "--workers" not in bad.output.split("Error:")[0]
    assert "applies to --executor ray only" in bad.output
    bad = CliRunner().invoke(cli, args + ["--executor", "ray", "--workers", "0"])
    assert bad.exit_code == 2 and "--workers must be at least 1" in bad.output
