"""Each method's removals for every budget of the grid, planned as few times as possible and cached.

A prefix-consistent schedule (`Schedule.prefix_consistent`: one_shot, iterative, decisive_phase)
is planned once, for the largest budget, and its first k removals serve budget k. Any other
schedule (contiguous: the best run of 4 need not contain the best run of 2) is planned per budget.
A schedule that stops early (`ScheduleStopped`, as decision_guided does before the Silent Phase)
keeps the removals it chose; budgets beyond them show where it stopped. Plans are made by workers
(`plan_entry`) and stored by the driver under `plan_keys`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ScheduleStopped
from ..models.handle import ModelHandle
from ..plugin_system.manager import code_identity
from ..probing.tuned_lens import settings_key
from ..scoring.calibration import WIKITEXT2, WIKITEXT2_SAMPLE, CalibrationSpec
from ..scoring.calibration_items import scorer_items
from ..scoring.methods import Method
from .store import content_key


@dataclass(frozen=True)
class MethodOutcome:
    """What a method removes at each budget: `removed[k]` (original indices, sorted) or None past a stop."""

    method: str  # as the user wrote it
    resolved: str  # scorer@schedule
    prefix_consistent: bool
    order: tuple[int, ...]  # the removal order (for non-prefix schedules: the plan of the largest budget)
    removed: dict[int, tuple[int, ...] | None]
    stopped_after: int | None  # how many removals the schedule made before it stopped
    message: str | None
    calibration: dict | None
    calibration_items: dict | None
    error: str | None = None  # planning raised: nothing was removed
    schedule_record: dict | None = None  # what the schedule checked on the way (`PrunePlan.record`)

    @classmethod
    def failed(cls, name: str, method: Method, budgets: tuple[int, ...], error: str) -> MethodOutcome:
        return cls(name, method.name, method.schedule.prefix_consistent, (), dict.fromkeys(budgets), None, None,
                   None, scorer_items(method.scorer), error)

    def to_json(self) -> dict:
        return {"method": self.method, "resolved": self.resolved, "prefix_consistent": self.prefix_consistent,
                "order": list(self.order), "removed": {str(k): list(v) if v is not None else None
                                                        for k, v in self.removed.items()},
                "stopped_after": self.stopped_after, "message": self.message, "calibration": self.calibration,
                "calibration_items": self.calibration_items, "error": self.error,
                "schedule_record": self.schedule_record}


def calibration_identity(spec: CalibrationSpec) -> dict:
    """The calibration as it enters a key: a file by its content, the named texts by name."""
    identity = spec.as_dict()
    if spec.source not in (WIKITEXT2, WIKITEXT2_SAMPLE):
        identity["source"] = content_key({"text": Path(spec.source).expanduser().read_text(encoding="utf-8")})
    return identity


def plan_entry(method: Method, handle: ModelHandle, k: int, calibration: CalibrationSpec, batch_size: int,
               status: Callable[[str], None]) -> dict:
    """Plan `k` removals; a stop keeps what was chosen."""
    try:
        plan = method.plan(handle, k, calibration, batch_size, status)
        return {"order": list(plan.order), "planned": k, "stopped_after": None, "message": None, "record": plan.record}
    except ScheduleStopped as stop:
        return {"order": list(stop.order), "planned": k, "stopped_after": len(stop.order), "message": str(stop),
                "record": stop.record}


def plan_keys(method: Method, budgets: tuple[int, ...], calibration: CalibrationSpec, batch_size: int,
              base_key: dict) -> dict[int, str]:
    """The plans a method needs, by the budget each is planned for, and their store keys: one for a
    prefix-consistent schedule (planned for the largest budget), else one per budget. The scorer's and
    schedule's code is in the key (`code_identity`), so editing a plugin re-plans the methods it defines."""
    calibrated = method.scorer.needs_calibration
    key = {**base_key, "kind": "sequence", "method": method.name, "options": method.scorer.options.model_dump(),
           "schedule_options": method.schedule.options.model_dump(),
           "scorer_code": code_identity(type(method.scorer)), "schedule_code": code_identity(type(method.schedule)),
           "calibration": calibration_identity(method.calibration(calibration)) if calibrated else None,
           "batch_size": batch_size if calibrated else None, "calibration_items": scorer_items(method.scorer),
           **({"lens": settings_key()} if method.reads_tuned_lens else {})}
    if method.schedule.prefix_consistent:
        return {max(budgets): content_key({**key, "k": None})}
    return {k: content_key({**key, "k": k}) for k in budgets}


def covers(entry: dict | None, k: int) -> bool:
    """Whether a stored plan serves budget k (for a prefix schedule, a longer plan or one that stopped does)."""
    return entry is not None and (entry["planned"] >= k or entry["stopped_after"] is not None)


def method_outcome(name: str, method: Method, budgets: tuple[int, ...], calibration: CalibrationSpec,
                   entries: dict[int, dict]) -> MethodOutcome:
    """The method's removals at every budget, from its plans (as `plan_keys` lays them out)."""
    prefix = method.schedule.prefix_consistent

    def removed(entry: dict, k: int) -> tuple[int, ...] | None:
        return tuple(sorted(entry["order"][:k])) if len(entry["order"]) >= k else None

    by_budget = {k: removed(entries[max(budgets) if prefix else k], k) for k in budgets}
    last = entries[max(budgets)]
    stop = next((e for e in entries.values() if e["stopped_after"] is not None), None)
    return MethodOutcome(name, method.name, prefix, tuple(last["order"]), by_budget,
                         stop["stopped_after"] if stop else None, stop["message"] if stop else None,
                         method.calibration(calibration).as_dict() if method.scorer.needs_calibration else None,
                         scorer_items(method.scorer), schedule_record=last.get("record"))
