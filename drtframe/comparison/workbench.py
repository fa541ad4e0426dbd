"""What one process needs to do a grid's work, and the three kinds of task it does.

The local executor builds one workbench in the driver; the Ray executor builds one in every worker
from the request alone. A task is a small spec; its outputs are what the driver stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..healing.apply import heal
from ..models.fingerprint import model_fingerprint
from ..models.loading import load_model, resolve_device, resolve_dtype
from ..plugin_system.manager import Registry, load_registry
from ..probing.tuned_lens import tuned_lens_for
from .cells import TextBenchmarkItems, cell_from_scores, profile_from_scores
from .grid import GUARD, Grid
from .request import CompareRequest, Variant
from .sequences import plan_entry
from .variants import text_variant_scores, variant_scores


@dataclass(frozen=True)
class PlanTask:
    """Plan `k` removals with a method (outputs: one plan entry)."""

    method: str
    k: int


@dataclass(frozen=True)
class ScoreTask:
    """Score `variants` on one item set (outputs: (variant, value) as each finishes)."""

    label: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class HealTask:
    """Heal one pruned variant and score it on item sets (outputs: (label, value) as each finishes)."""

    healer: str
    variant: Variant
    labels: tuple[str, ...]


class Workbench:
    """The loaded dense model and the prepared grid (prepared from the request when not given)."""

    def __init__(self, request: CompareRequest, registry: Registry | None = None, grid: Grid | None = None) -> None:
        registry = registry or load_registry()
        self.grid = grid or Grid.prepare(request, registry)
        self.handle = load_model(request.model, registry)
        self.request = request
        self._text: dict[str, list] = {}
        if (request.readout == "tuned" and self.grid.guard) or any(m.reads_tuned_lens for m in self.grid.methods.values()):
            tuned_lens_for(self.handle)  # fitted on the dense model, before any block is removed

    def describe(self) -> dict:
        dtype = resolve_dtype(self.request.model.dtype, resolve_device(self.request.model.device))
        return {"fingerprint": model_fingerprint(self.handle), "num_layers": self.handle.num_layers,
                "dtype": str(dtype).removeprefix("torch.")}

    def run(self, task, status: Callable[[str], None]) -> Iterator:
        request = self.request
        if isinstance(task, PlanTask):
            yield plan_entry(self.grid.methods[task.method], self.handle, task.k, request.calibration,
                             request.batch_size, status)
        elif isinstance(task, ScoreTask):
            status(f"{task.label}: {len(task.variants)} variants")
            for variant, scores in self._scores(task.label, task.variants, request.replay):
                yield variant, self._value(task.label, scores, variant)
        else:
            yield from self._healed(task, status)

    def _scores(self, label: str, variants: tuple[Variant, ...], replay: bool) -> Iterator:
        """(variant, scores) of `variants` on the item set `label`, replayed from the dense model's forwards."""
        if label != GUARD and isinstance(bench := self.grid.bench(label), TextBenchmarkItems):
            return text_variant_scores(self.handle, self._text_items(bench), variants, replay)
        return variant_scores(self.handle, self.grid.items(label), variants, label == GUARD, replay,
                              readout=self.request.readout)

    def _text_items(self, bench: TextBenchmarkItems) -> list:
        """A perplexity benchmark's items for the loaded model's tokenizer, cut once per process."""
        if bench.name not in self._text:
            self._text[bench.name] = bench.items_for(self.handle)
        return self._text[bench.name]

    def _value(self, label: str, scores: list, variant: Variant) -> dict:
        if label == GUARD:
            kept = tuple(i for i in self.handle.kept if i not in variant)
            return profile_from_scores(scores, self.grid.items(GUARD), kept)
        bench = self.grid.bench(label)
        if isinstance(bench, TextBenchmarkItems):
            return bench.cell(self._text_items(bench), scores)
        return cell_from_scores(bench, scores)

    def _healed(self, task: HealTask, status: Callable[[str], None]) -> Iterator[tuple[str, dict]]:
        """The healed variant run whole (a healer may change any kept block, so nothing is replayed); the
        dense weights are restored afterwards."""
        model = self.handle.model
        original = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        try:
            status(f"healing {','.join(map(str, task.variant))} with {task.healer}")
            record = heal(self.handle, task.variant, self.grid.healers[task.healer], self.request.calibration,
                          self.request.batch_size)
            for label in task.labels:
                status(f"{label}: healed variant {','.join(map(str, task.variant))}")
                scores = dict(self._scores(label, (task.variant,), replay=False))[task.variant]
                yield label, {**self._value(label, scores, task.variant), "healing": record}
        finally:
            model.load_state_dict(original)
