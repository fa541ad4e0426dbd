"""The hooks plugins implement. Each hands named classes to drtframe through `register`.

Hooks only discover; the work runs through the plain base classes, so pluggy never sits in a hot
loop. Arguments may be added to these specs later, never removed: implementations may accept a
subset of them.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("drtframe")
hookimpl = pluggy.HookimplMarker("drtframe")


@hookspec
def drtframe_register_scorers(register: Callable[[type], None]) -> None:
    """Register importance scorers: `register(MyScorer)` for each `drtframe.Scorer` subclass."""


@hookspec
def drtframe_register_schedules(register: Callable[[type], None]) -> None:
    """Register pruning schedules: `register(MySchedule)` for each `drtframe.Schedule` subclass."""


@hookspec
def drtframe_register_probes(register: Callable[[type], None]) -> None:
    """Register decision probes: `register(MyProbe)` for each `drtframe.Probe` subclass."""


@hookspec
def drtframe_register_benchmarks(register: Callable[[type], None]) -> None:
    """Register benchmarks: `register(MyBenchmark)` for each `drtframe.Benchmark` subclass."""


@hookspec
def drtframe_register_architectures(register: Callable[[object], None]) -> None:
    """Register model architectures: `register(drtframe.Architecture(...))` for each family."""


@hookspec
def drtframe_register_healers(register: Callable[[type], None]) -> None:
    """Register healers: `register(MyHealer)` for each `drtframe.Healer` subclass."""
