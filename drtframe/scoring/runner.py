"""`drtframe score` as a library call: score every layer of a model and order their removal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..models.loading import ModelSpec, load_model
from ..plugin_system.manager import Registry
from .calibration import CalibrationSpec
from .calibration_items import scorer_items
from .methods import Method, resolve_method
from .schedule import PrunePlan


@dataclass(frozen=True)
class ScoreRequest:
    """One scoring run. `remove` is how many removals the order covers; None lets the schedule
    choose (all layers but one; for the contiguous schedule the scorer's run length n, else 1)."""

    model: ModelSpec
    method: str
    options: Mapping[str, str] = field(default_factory=dict)
    calibration: CalibrationSpec = CalibrationSpec()
    batch_size: int = 8
    remove: int | None = None


@dataclass(frozen=True)
class ScoreResult:
    request: ScoreRequest
    method: Method
    plan: PrunePlan
    num_layers: int

    @property
    def calibration(self) -> CalibrationSpec | None:
        """The calibration the scores rest on, None for scorers that read no data."""
        return self.method.calibration(self.request.calibration) if self.method.scorer.needs_calibration else None

    def to_json(self) -> dict:
        """Scores (one per original layer, None where a schedule gives none) and the removal order."""
        from .. import __version__

        return {
            "drtframe_version": __version__,
            "model": self.request.model.source,
            "method": self.method.name,
            "options": dict(self.request.options),
            "num_layers": self.num_layers,
            "scores": list(self.plan.scores),
            "order": list(self.plan.order),
            "calibration": self.calibration.as_dict() if self.calibration else None,
            "calibration_items": scorer_items(self.method.scorer),
            "schedule_record": self.plan.record,
        }


def run_score(request: ScoreRequest, registry: Registry,
              status: Callable[[str], None] = lambda message: None) -> ScoreResult:
    """Validate the method and calibration, load the model, then let the method order the removals."""
    method = resolve_method(registry, request.method, request.options)
    if method.scorer.needs_calibration:
        request.calibration.check()
    status(f"loading {request.model.source}")
    handle = load_model(request.model, registry)
    total = handle.num_layers
    k = request.remove if request.remove is not None else method.schedule.default_count(method.scorer, total)
    plan = method.plan(handle, k, request.calibration, request.batch_size, status)
    return ScoreResult(request, method, plan, total)
