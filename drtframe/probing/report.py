"""Run probes over a model and collect their per-layer results into one JSON-ready report.

Each layer's row holds `layer` and `original_layer`, then every probe's metrics. Those two names are
drtframe's; the decision profile's own metrics (`acc`, `decision_margin`, `option_frequency`,
`entropy`) are reserved for drtframe's probes that report the profile; every other metric name
belongs to the one probe that returns it. A probe's result is checked before it is used.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Mapping, Sequence

from ..errors import DrtframeError
from ..evaluation.items import MCItem
from ..models.handle import ModelHandle
from ..plugin_system.checks import Check, checked, count_problem
from ..plugin_system.manager import BUILTIN_DISTRIBUTION, Entry
from ..plugin_system.options import build_options
from ..plugin_system.suggest import unknown_name
from .probe import Probe, ProbeContext
from .profile import DecisionProfile

LAYER_COLUMNS = ("layer", "original_layer")
PROFILE_METRICS = ("acc", "decision_margin", "option_frequency", "entropy")


def configured_probes(registry, names: Sequence[str], options: Mapping[str, str]) -> list[Probe]:
    """Instantiate the named probes, handing each the options its schema declares; refuse the rest.

    Each probe's `measure` answers through its check (`drtframe.plugin_system.checks`).
    """
    entries = [registry.entry("probe", name) for name in names]
    known = {key for entry in entries for key in entry.obj.Options.model_fields}
    for key in options:
        if key not in known:
            raise unknown_name(f"option of probes {', '.join(names)}", key, known)
    probes = []
    for entry in entries:
        cls = entry.obj
        own = {k: v for k, v in options.items() if k in cls.Options.model_fields}
        probe = cls(build_options(cls.Options, own, entry.name))
        probes.append(checked(probe, entry, {"measure": measure_check(entry)}))
    return probes


def measure_check(entry: Entry) -> Check:
    """The check of `Probe.measure` for the probe `entry`: metric names and one value per layer."""
    reserved = LAYER_COLUMNS + (() if entry.distribution == BUILTIN_DISTRIBUTION else PROFILE_METRICS)

    def problem(measured: object, ctx: ProbeContext) -> str | None:
        if not isinstance(measured, Mapping):
            return f"returned {type(measured).__name__}, not a dict of metric name -> per-layer values"
        layers = ctx.handle.num_layers
        for name, values in measured.items():
            if not isinstance(name, str) or name in reserved:
                return (f"returned the metric name {name!r}, which is reserved; drtframe reports "
                        f"{', '.join(reserved)} itself")
            wrong = count_problem(values, layers, f"values of {name!r}", f"a model of {layers} layers",
                                  numbers=False)
            if wrong:
                return wrong
            try:
                json.dumps(list(values))
            except (TypeError, ValueError) as exc:
                return f"returned values of {name!r} that JSON cannot hold ({exc}); use Python numbers, lists, strings"
        return None

    return problem


def profile_entry(profile: DecisionProfile, kept: Sequence[int]) -> dict:
    """The transition and phases of a profile; `kept` maps positions to original layer numbers."""
    t = profile.transition
    return {
        "transition_layer": t.layer,
        "transition_interval": list(t.interval) if t.interval else None,
        "transition_original_layer": kept[t.layer] if t.layer is not None and t.layer < len(kept) else None,
        "baseline_acc": t.baseline,
        "silent_phase_acc": t.levels[0] if t.levels else None,
        "decisive_phase_acc": t.levels[1] if t.levels else None,
        "silent_phase": [kept[i] for i in profile.silent_phase],
        "decisive_phase": [kept[i] for i in profile.decisive_phase],
    }


def run_probes(handle: ModelHandle, items: Sequence[MCItem], probes: Sequence[Probe], budget: int = 2048,
               progress: Callable[[int], None] | None = None, readout: str = "logit") -> tuple[dict, DecisionProfile]:
    """Per-layer entries from every probe plus the transition; layers are numbered as in the original."""
    ctx = ProbeContext(handle, items, budget, progress, readout)
    measured: dict[str, list] = {}
    owner: dict[str, str] = {}
    for probe in probes:
        result = probe.measure(ctx)
        for name in result:
            if name in measured:
                raise DrtframeError(f"probes {owner[name]!r} and {probe.name!r} both return the metric {name!r}; "
                                    f"run them separately")
            owner[name] = probe.name
        measured.update(result)
    layers = [{"layer": position, "original_layer": original,
               **{name: values[position] for name, values in measured.items()}}
              for position, original in enumerate(handle.kept)]
    return {"n": len(items), "layers": layers, **profile_entry(ctx.profile, handle.kept)}, ctx.profile


def plotted_metrics(report: dict) -> dict[str, list[float]]:
    """Per-layer metrics of the report's probes that are one number per layer, other than the profile's."""
    layers = report["layers"]
    names = [name for name in layers[0] if name not in LAYER_COLUMNS + PROFILE_METRICS]
    return {name: [row[name] for row in layers] for name in names
            if all(isinstance(row[name], numbers.Real) for row in layers)}
