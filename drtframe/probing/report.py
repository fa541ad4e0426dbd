"""Run probes over a model and collect their per-layer results into one JSON-ready report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..evaluation.items import MCItem
from ..options import build_options
from ..suggest import unknown_name
from ..models.handle import ModelHandle
from .probe import Probe, ProbeContext
from .profile import DecisionProfile


def configured_probes(registry, names: Sequence[str], options: Mapping[str, str]) -> list[Probe]:
    """Instantiate the named probes, handing each the options its schema declares; refuse the rest."""
    classes = [registry.get("probe", name) for name in names]
    known = {key for cls in classes for key in cls.Options.model_fields}
    for key in options:
        if key not in known:
            raise unknown_name(f"option of probes {', '.join(names)}", key, known)
    return [cls(build_options(cls.Options, {k: v for k, v in options.items() if k in cls.Options.model_fields},
                              cls.name)) for cls in classes]


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
               progress: Callable[[int], None] | None = None) -> tuple[dict, DecisionProfile]:
    """Per-layer entries from every probe plus the transition; layers are numbered as in the original."""
    ctx = ProbeContext(handle, items, budget, progress)
    measured: dict[str, list] = {}
    for probe in probes:
        measured.update(probe.measure(ctx))
    layers = [{"layer": position, "original_layer": original,
               **{name: values[position] for name, values in measured.items()}}
              for position, original in enumerate(handle.kept)]
    return {"n": len(items), "layers": layers, **profile_entry(ctx.profile, handle.kept)}, ctx.profile
