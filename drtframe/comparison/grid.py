"""A grid made concrete before any model loads: its methods and healers resolved, its items read.

The driver prepares it to refuse bad input early and to key the work; every worker prepares the
same grid from the same request to do the work.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..evaluation.items import MCItem
from ..evaluation.runner import resolve_benchmark
from ..healing.apply import resolve_healer
from ..healing.healer import Healer
from ..plugin_system.manager import Registry
from ..probing.tuned_lens import settings_key
from ..scoring.methods import Method, resolve_method
from .cells import BenchmarkItems, TextBenchmarkItems, load_benchmark
from .request import NO_HEALER, CompareRequest
from .store import content_key

GUARD = "guard items"  # the label of the decision-profile item set


@dataclass(frozen=True)
class Grid:
    """The request's methods, healers (without "none"), benchmarks' items and guard items."""

    request: CompareRequest
    methods: dict[str, Method]
    healers: dict[str, Healer]
    benches: tuple[BenchmarkItems | TextBenchmarkItems, ...]
    guard: tuple[list[MCItem], dict] | None  # the items and the record of where they came from

    @classmethod
    def prepare(cls, request: CompareRequest, registry: Registry) -> Grid:
        """Check the request, resolve every name and load every item; one line for anything wrong."""
        request.check()
        methods = {name: resolve_method(registry, name, request.options.get(name, {}), request.readout)
                   for name in request.methods}
        healers = {name: resolve_healer(registry, name, request.options.get(name, {})) for name in request.heal
                   if name != NO_HEALER}
        for name in request.benchmarks:
            resolve_benchmark(registry, name)  # an unknown name is told apart from missing data
        request.check_data()
        if healers or any(m.scorer.needs_calibration for m in methods.values()):
            request.calibration.check()
        benches = tuple(load_benchmark(registry, name, request.split_for(name), request.format, request.limit,
                                       request.local_data, request.options.get(name)) for name in request.benchmarks)
        guard = request.guard.load(registry) if request.guard else None
        return cls(request, methods, healers, benches, guard)

    @property
    def labels(self) -> tuple[str, ...]:
        """The item sets every variant is scored on: the guard items (a lens profile), then each benchmark."""
        return ((GUARD,) if self.guard else ()) + tuple(b.name for b in self.benches)

    def items(self, label: str) -> list[MCItem]:
        """The multiple-choice items of `label` (a perplexity benchmark's items come with the model)."""
        return self.guard[0] if label == GUARD else self.bench(label).items

    def bench(self, label: str) -> BenchmarkItems | TextBenchmarkItems:
        return next(b for b in self.benches if b.name == label)

    def identity(self, label: str) -> dict:
        """What besides the model and removed set determines the value stored for `label`."""
        if label == GUARD:
            readout = self.request.readout + (f"-{settings_key()}" if self.request.readout == "tuned" else "")
            return {"kind": "profile", "readout": readout,
                    "items": content_key({"items": [[i.contexts, i.continuations, i.gold] for i in self.guard[0]]})}
        return {"kind": "cell", **self.bench(label).identity()}
