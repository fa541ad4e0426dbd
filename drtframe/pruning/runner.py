"""`drtframe prune` as a library call: choose layers, remove them, check the decision, measure, save atomically.

The collapse guard (on by default, on the package's ARC-Easy sample unless another `ItemWindow`
is given): the dense and the pruned model are probed through the logit lens on those items; if the
dense model has a Silent/Decisive transition and the pruned one has none, nothing is written and
`DecisionCollapse` (exit 3) names the removed blocks that were in the dense Silent Phase, unless
`force`. A dense model without a transition on the items leaves nothing to protect: it passes, and
the record says `"checked": false`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DecisionCollapse, DrtframeError
from ..evaluation.items import MCItem
from ..healing.apply import heal, resolve_healer
from ..models.handle import ModelHandle
from ..models.loading import ModelSpec, load_model
from ..plugin_system.manager import Registry
from ..scoring.calibration import CalibrationSpec
from ..scoring.calibration_items import ItemWindow, scorer_items
from ..scoring.methods import resolve_method
from ..scoring.schedule import PrunePlan
from .saving import check_output_dir, save_pruned
from .speed import generation_speeds


@dataclass(frozen=True)
class PruneRequest:
    """Everything one prune run needs. Exactly one of (`method` with `remove`) or `layers`.

    `calibration` and `batch_size` matter only for scorers that read calibration data. `guard`
    holds the collapse guard's items (None turns it off); `force` writes a collapsed model anyway.
    `readout` is the lens of the guard's profiles and of any method with a `readout` option.
    """

    model: ModelSpec
    output: Path
    method: str | None = None
    remove: int | None = None
    layers: tuple[int, ...] | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    overwrite: bool = False
    measure_speed: bool = True
    calibration: CalibrationSpec = CalibrationSpec()
    batch_size: int = 8
    guard: ItemWindow | None = field(default_factory=ItemWindow.sample)
    force: bool = False
    heal: str | None = None
    heal_options: Mapping[str, str] = field(default_factory=dict)
    readout: str = "logit"


@dataclass(frozen=True)
class PruneResult:
    plan: PrunePlan
    output: Path
    num_layers_before: int
    num_layers_after: int
    params_before: int
    params_after: int
    tokens_per_s_before: float | None
    tokens_per_s_after: float | None
    guard: dict | None = None
    healing: dict | None = None

    @property
    def speedup(self) -> float | None:
        if self.tokens_per_s_before and self.tokens_per_s_after:
            return self.tokens_per_s_after / self.tokens_per_s_before
        return None

    @property
    def ideal_speedup(self) -> float:
        return self.num_layers_before / self.num_layers_after


Status = Callable[[str], None]


def probe_profile(handle: ModelHandle, items: list[MCItem], readout: str = "logit"):
    """The decision profile of `handle` on `items` through the `readout` lens."""
    from ..probing.lens import lens_profile

    return lens_profile(handle, items, readout)


def final_profile(handle: ModelHandle, items: list[MCItem]):
    """The decision profile of `handle`'s own output alone (one layer), a plain evaluation's cost.

    Its transition is None exactly when the lens profile's is: the rule's 'no transition' test reads
    only the final accuracy (and the last lens layer is the model's output), so `guard_verdict` on it
    gives the collapse guard's verdict without projecting every layer onto the vocabulary.
    """
    from ..evaluation.loglikelihood import choice_scores
    from ..probing.profile import decision_profile

    return decision_profile(choice_scores(handle, items), [item.gold for item in items])


def guard_verdict(dense_transition: int | None, pruned_transition: int | None) -> str:
    """From the transition layers (None: none) of the dense and pruned profiles: 'not checked' when the
    dense model has none (nothing to protect), else 'refuse' when the pruned model has lost it, else 'pass'."""
    if dense_transition is None:
        return "not checked"
    return "refuse" if pruned_transition is None else "pass"


def decision_guard(handle: ModelHandle, removed: tuple[int, ...], items: list[MCItem], record: dict,
                   force: bool, status: Status = lambda message: None, dense=None, readout: str = "logit") -> dict:
    """Probe the model before and after removing `removed`; refuse (exit 3) when the transition is lost.

    `dense` is the original model's profile when it was taken before (a healer changes the weights
    of the model the pruned one is cut from)."""
    from ..probing.report import profile_entry

    if dense is None:
        status(f"collapse guard: probing the original model on {len(items)} items")
        dense = probe_profile(handle, items, readout)
    with handle.temporarily_without(removed) as pruned:
        status(f"collapse guard: probing the pruned model on {len(items)} items")
        after = probe_profile(pruned, items, readout)
        verdict = guard_verdict(dense.transition.layer, after.transition.layer)
        entry = {"items": record, "checked": verdict != "not checked",
                 "dense": profile_entry(dense, handle.kept), "pruned": profile_entry(after, pruned.kept),
                 "dense_acc": dense.acc[-1], "pruned_acc": after.acc[-1], "readout": readout, "forced": False}
    if verdict != "refuse":
        return entry
    if not force:
        silent = [layer for layer in removed if layer in entry["dense"]["silent_phase"]]
        named = f"removed Silent-Phase blocks {', '.join(map(str, sorted(silent)))}" if silent else "no Silent-Phase block was removed"
        raise DecisionCollapse(
            f"the pruned model has no decision transition on {record['benchmark']} {record['split']} items "
            f"{record['first_item']}-{record['last_item']} (dense l* = {entry['dense']['transition_original_layer']}; "
            f"accuracy {entry['dense_acc']:.2f} -> {entry['pruned_acc']:.2f} against the best constant answer's "
            f"{entry['dense']['baseline_acc']:.2f}, which the pruned model does not beat by two standard errors); "
            f"{named}; nothing written (--force writes it anyway)")
    return {**entry, "forced": True}


def run_prune(request: PruneRequest, registry: Registry, status: Status = lambda message: None) -> PruneResult:
    """Validate everything cheap first, then load, plan, prune in place, measure and save."""
    from .. import __version__

    if (request.layers is None) == (request.method is None):
        raise DrtframeError("give either --method with --remove, or --layers")
    if request.method is not None and (request.remove is None or request.remove < 1):
        raise DrtframeError("--remove must be a whole number of layers, at least 1")
    if request.layers is not None and not request.layers:
        raise DrtframeError("--layers names no layers")
    method = resolve_method(registry, request.method, request.options, request.readout) if request.method else None
    healer = resolve_healer(registry, request.heal, request.heal_options) if request.heal else None
    if healer is not None and not healer.standard_architecture:
        raise DrtframeError(f"healer {healer.name} leaves a model plain transformers cannot reload, so prune cannot "
                            f"save it; evaluate it with drtframe eval --heal or compare --heal")
    calibrated = method is not None and method.scorer.needs_calibration
    if calibrated or healer is not None:
        request.calibration.check()
    check_output_dir(request.output, request.overwrite)
    guard_items = request.guard.load(registry) if request.guard else None

    status(f"loading {request.model.source}")
    handle = load_model(request.model, registry)
    if (request.readout == "tuned" and guard_items is not None) or (method is not None and method.reads_tuned_lens):
        from ..probing.tuned_lens import tuned_lens_for

        tuned_lens_for(handle, status)  # fitted on the dense model, before any block is removed
    total = handle.num_layers
    if method is not None:
        plan = method.plan(handle, request.remove, request.calibration, request.batch_size, status)
    else:
        from ..models.architecture import validate_removal

        removed = validate_removal(request.layers, total)
        plan = PrunePlan("manual", removed, tuple(request.layers), tuple(None for _ in range(total)))
    dense = None
    if guard_items is not None and healer is not None:
        status(f"collapse guard: probing the original model on {len(guard_items[0])} items")
        dense = probe_profile(handle, guard_items[0], request.readout)
    healing = heal(handle, plan.removed, healer, request.calibration, request.batch_size, status) if healer else None
    guard = None
    if guard_items is not None:
        guard = decision_guard(handle, plan.removed, *guard_items, request.force, status, dense, request.readout)

    params_before = handle.parameter_count()
    speed_before = speed_after = None
    if request.measure_speed:
        status("timing generation of the original and the pruned model, in turns")
        speed_before, speed_after = generation_speeds(handle, plan.removed)
    pruned = handle.without(plan.removed)
    result = PruneResult(plan, request.output, total, pruned.num_layers, params_before,
                         pruned.parameter_count(), speed_before, speed_after, guard, healing)
    manifest = {
        "drtframe_version": __version__,
        "source_model": request.model.source,
        "method": method.name if method else "manual",
        "options": dict(request.options),
        "calibration": (method.calibration(request.calibration) if calibrated else request.calibration).as_dict()
        if calibrated or healer else None,
        "calibration_items": scorer_items(method.scorer) if method else None,
        "readout": request.readout,
        "decision_guard": guard,
        "healing": healing,
        "removed_layers": list(plan.removed),
        "removal_order": list(plan.order),
        "schedule_record": plan.record,
        "num_layers_before": total,
        "num_layers_after": pruned.num_layers,
        "parameters_before": params_before,
        "parameters_after": result.params_after,
    }
    status(f"writing {request.output}")
    save_pruned(pruned, request.output, manifest, request.overwrite)
    return result
