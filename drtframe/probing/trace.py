"""The paper's iterative analysis: remove blocks one at a time and re-probe after every removal."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..evaluation.items import MCItem
from ..models.handle import ModelHandle
from ..scoring.calibration import CalibrationSpec
from ..scoring.methods import Method
from .lens import lens_profile
from .report import profile_entry


def trace_removals(handle: ModelHandle, items: Sequence[MCItem], method: Method, k: int,
                   calibration: CalibrationSpec = CalibrationSpec(), batch_size: int = 8,
                   status: Callable[[str], None] = lambda message: None, readout: str = "logit") -> list[dict]:
    """The profile after 0, 1, ..., k removals in the order `method` removes blocks."""
    plan = method.plan(handle, k, calibration, batch_size)
    steps = []
    for count in range(k + 1):
        removed = tuple(plan.order[:count])
        with handle.temporarily_without(removed) as pruned:
            status(f"trace: probing with {count}/{k} blocks removed")
            profile = lens_profile(pruned, items, readout)
            steps.append({"removed_count": count, "removed": list(removed), "kept": list(pruned.kept),
                          "acc": list(profile.acc), "decision_margin": list(profile.decision_margin),
                          "final_acc": profile.acc[-1], **profile_entry(profile, pruned.kept)})
    return steps
