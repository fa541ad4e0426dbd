"""`drtframe compare` as a library call: plan every method once, evaluate every distinct removed set
once per benchmark, reuse whatever the store already holds, and store each piece as it arrives.

The driver (this module) keys, stores and assembles; an executor runs the tasks on workers, in this
process or on a Ray cluster, so the cache, resume and results are the same whichever runs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..errors import DrtframeError
from ..execution import Executor, Failure, LocalExecutor
from ..models.loading import locate
from ..plugin_system.manager import Registry, code_identity, load_registry
from ..pruning.runner import guard_verdict
from .cells import BenchmarkItems, TextBenchmarkItems
from .grid import GUARD, Grid
from .outputs import write_outputs
from .request import NO_HEALER, Variant
from .result import CompareResult
from .sequences import MethodOutcome, calibration_identity, covers, method_outcome, plan_keys
from .store import Store, content_key
from .workbench import HealTask, PlanTask, ScoreTask, Workbench


@dataclass(frozen=True)
class GridProgress:
    """Where the grid stands: pieces of work done of `total` (`cached` of them read from the store)."""

    done: int
    total: int
    cached: int
    description: str


def _check_writable(directory: Path) -> None:
    """Refuse an output directory that cannot be created or written, before anything is loaded."""
    existing = directory.expanduser().resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise DrtframeError(f"cannot write results to {directory}: {existing} is not a writable directory")


class _Tally:
    """Counts finished work and reports it through the caller's callback."""

    def __init__(self, report: Callable[[GridProgress], None], total: int) -> None:
        self.report, self.total, self.done, self.cached = report, total, 0, 0
        self.description = "starting"

    def say(self, description: str) -> None:
        self.description = description
        self.report(GridProgress(self.done, self.total, self.cached, description))

    def finish(self, n: int = 1, cached: bool = False) -> None:
        self.done += n
        self.cached += n if cached else 0
        self.say(self.description)


def compare(request, registry: Registry | None = None, progress: Callable[[GridProgress], None] = lambda p: None,
            executor: Executor | None = None) -> CompareResult:
    """Run (or resume) the grid of `request` on `executor` (default: this process) and write its outputs
    to `request.output_dir`."""
    registry = registry or load_registry()
    grid = Grid.prepare(request, registry)
    _check_writable(request.output_dir)
    executor = executor or LocalExecutor()
    plans = len(grid.methods) * len(request.budgets)  # at most; a prefix-consistent method needs one
    tally = _Tally(progress, plans + len(grid.labels) * (1 + plans))
    tally.say(f"loading {request.model.source}")
    locate(request.model.source)  # an alias is fetched and converted once, before any worker loads it
    with executor:
        # A remote worker prepares its own grid and loads plugins from entry points; this process shares its own.
        open_worker = partial(Workbench, request) if executor.remote else partial(Workbench, request, registry, grid)
        model = _one_model(executor.start(open_worker, tally.say), request.model.source)
        if max(request.budgets) >= model["num_layers"]:
            raise DrtframeError(f"--remove {max(request.budgets)} leaves no blocks: the model has "
                                f"{model['num_layers']}")
        store = Store(request.output_dir)
        store.check_writable()
        base_key = {"model": model["fingerprint"], "dtype": model["dtype"], "drtframe": _version()}
        outcomes = _plan(grid, executor, store, base_key, tally)
        variants = [()] + sorted({v for o in outcomes for v in o.removed.values() if v is not None})
        done, failures = _score(grid, executor, store, base_key, variants, tally)
        where = executor.describe()  # before close() releases the workers

    for (variant, healer, label), error in failures.items():
        if not variant:
            raise DrtframeError(f"the dense model could not be scored on {label}: {error}")
    profiles = {(v, h): value for (v, h, label), value in done.items() if label == GUARD}
    if grid.guard:
        dense_layer = profiles[((), NO_HEALER)]["transition_layer"]
        for profile in profiles.values():
            profile["verdict"] = guard_verdict(dense_layer, profile["transition_layer"])
    cells = {key: value for key, value in done.items() if key[2] != GUARD}
    result = CompareResult(
        request, {"source": request.model.source, "fingerprint": model["fingerprint"],
                  "num_layers": model["num_layers"], "dtype": model["dtype"]},
        tuple(outcomes), tuple(_bench_info(b, done) for b in grid.benches), cells, profiles,
        grid.guard[1] if grid.guard else None, tally.done - tally.cached, tally.cached, failures,
        where)
    tally.say("writing results")
    write_outputs(result, request.output_dir)
    return result


def _one_model(described: list[dict], source: str) -> dict:
    """The loaded model's fingerprint, block count and dtype; every worker must have loaded the same."""
    if len({(d["fingerprint"], d["num_layers"], d["dtype"]) for d in described}) > 1:
        raise DrtframeError(f"the workers loaded different models from {source}: give every worker the same files")
    return described[0]


def _plan(grid: Grid, executor: Executor, store: Store, base_key: dict, tally: _Tally) -> list[MethodOutcome]:
    """Every method's removals at every budget: stored plans reused, missing ones planned by the workers."""
    r = grid.request
    keys = {name: plan_keys(m, r.budgets, r.calibration, r.batch_size, base_key) for name, m in grid.methods.items()}
    tally.total -= len(grid.methods) * len(r.budgets) - sum(map(len, keys.values()))
    entries: dict[str, dict[int, dict]] = {name: {} for name in keys}
    tasks = []
    for name, by_budget in keys.items():
        for k, key in by_budget.items():
            entry = store.get("sequences", key)
            if covers(entry, k):
                entries[name][k] = entry
                tally.finish(cached=True)
            else:
                tasks.append(PlanTask(name, k))
    errors: dict[str, str] = {}
    for task, output in executor.run(tasks, tally.say):
        if isinstance(output, Failure):
            errors[task.method] = output.error
        else:
            entries[task.method][task.k] = output
            store.put("sequences", keys[task.method][task.k], output)
        tally.finish()
    outcomes = []
    for name, method in grid.methods.items():
        if name not in errors and len(entries[name]) < len(keys[name]):
            errors[name] = "no plan came back from the worker"
        outcomes.append(MethodOutcome.failed(name, method, r.budgets, errors[name]) if name in errors else
                        method_outcome(name, method, r.budgets, r.calibration,
                                       {k: entries[name][k] for k in keys[name]}))
    return outcomes


Done = dict[tuple[Variant, str, str], dict]  # (removed set, healer, label) -> stored value


def _score(grid: Grid, executor: Executor, store: Store, base_key: dict, variants: list[Variant],
           tally: _Tally) -> tuple[Done, dict[tuple[Variant, str, str], str]]:
    """Every variant's value on every item set, unhealed and healed: stored ones reused, the rest
    computed by the workers; and the error of each that failed."""
    r = grid.request
    labels = grid.labels
    healed = {name: {"healer": name, "options": healer.options.model_dump(), "code": code_identity(type(healer)),
                     "calibration": calibration_identity(r.calibration), "batch_size": r.batch_size}
              for name, healer in grid.healers.items()}

    def store_key(variant: Variant, healer: str, label: str) -> tuple[str, str]:
        identity = {**base_key, **grid.identity(label)}
        heal = {"heal": healed[healer]} if healer != NO_HEALER else {}
        return identity["kind"], content_key({**identity, "removed": list(variant), **heal})

    wanted = [(v, NO_HEALER, label) for label in labels for v in variants]
    wanted += [(v, h, label) for h in healed for v in variants[1:] for label in labels]
    tally.total = tally.done + len(wanted)
    found: Done = {}
    for key in wanted:
        if (value := store.get(*store_key(*key))) is not None:
            found[key] = value
    tally.finish(len(found), cached=True)
    tasks = [ScoreTask(label, chunk) for label in labels
             for chunk in _chunks([v for v in variants if (v, NO_HEALER, label) not in found], executor.workers)]
    tasks += [HealTask(h, v, missing) for h in healed for v in variants[1:]
              if (missing := tuple(label for label in labels if (v, h, label) not in found))]

    failures: dict[tuple[Variant, str, str], str] = {}
    for task, output in executor.run(tasks, tally.say):
        if isinstance(output, Failure):
            left = [key for key in _keys(task) if key not in found and key not in failures]
            failures.update(dict.fromkeys(left, output.error))
            tally.finish(len(left))
            continue
        if isinstance(task, ScoreTask):
            (variant, value), healer, label = output, NO_HEALER, task.label
        else:
            (label, value), healer, variant = output, task.healer, task.variant
        found[(variant, healer, label)] = value
        store.put(*store_key(variant, healer, label), value)
        tally.finish()
    for key in wanted:  # drtframe's own check that every piece came back
        if key not in found and key not in failures:
            failures[key] = "no result came back from the worker"
    return {key: found[key] for key in wanted if key in found}, failures


def _keys(task) -> Iterable[tuple[Variant, str, str]]:
    if isinstance(task, ScoreTask):
        return [(v, NO_HEALER, task.label) for v in task.variants]
    return [(task.variant, task.healer, label) for label in task.labels]


def _chunks(variants: list[Variant], parts: int) -> list[tuple[Variant, ...]]:
    """Variants dealt round-robin into at most `parts` tasks (each replays its own dense pass)."""
    return [chunk for i in range(parts) if (chunk := tuple(variants[i::parts]))]


def _bench_info(bench: BenchmarkItems | TextBenchmarkItems, cells: Done) -> dict:
    """What tables, plots and paired tests need of a benchmark: gold answers in item order included (a
    perplexity benchmark: its number of items, which its dense cell knows, and no chance level)."""
    info = {"name": bench.name, "split": bench.split, "format": bench.format, "items_key": bench.identity()["items"]}
    if isinstance(bench, TextBenchmarkItems):
        return {**info, "n": cells[((), NO_HEALER, bench.name)]["n"], "chance": None}
    return {**info, "n": len(bench.items), "chance": bench.chance, "gold": [i.gold for i in bench.items]}


def _version() -> str:
    from .. import __version__

    return __version__
