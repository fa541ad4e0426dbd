"""Turn a method name such as `block_influence@iterative` into a configured scorer and schedule."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import DrtframeError
from ..models.handle import ModelHandle
from ..plugin_system.checks import checked
from ..plugin_system.manager import Registry
from ..plugin_system.options import build_options
from ..plugin_system.suggest import unknown_name
from .calibration import CalibrationSpec, calibration_tokens
from .schedule import SCHEDULE_CHECKS, PrunePlan, Schedule
from .scorer import SCORER_CHECKS, Scorer, ScoringContext


@dataclass(frozen=True)
class Method:
    """A scorer paired with the schedule that turns its scores into removals."""

    name: str
    scorer: Scorer
    schedule: Schedule

    @property
    def reads_tuned_lens(self) -> bool:
        """Whether planning reads the model through the tuned lens (a `readout=tuned` option)."""
        readouts = (getattr(self.scorer.options, "readout", None), getattr(self.schedule.options, "readout", None))
        return "tuned" in readouts

    def calibration(self, spec: CalibrationSpec) -> CalibrationSpec:
        """`spec` with the sizes it leaves open taken from the scorer (`Scorer.calibration_size`)."""
        return spec.sized(self.scorer.calibration_size)

    def plan(self, handle: ModelHandle, k: int, calibration: CalibrationSpec, batch_size: int = 8,
             status: Callable[[str], None] = lambda message: None) -> PrunePlan:
        """Choose `k` layers of `handle` to remove, tokenising `calibration` if the scorer reads data.

        `status` hears what is going on ('planning with NAME: i/k removals chosen').
        """
        if k < 1:
            raise DrtframeError("--remove must be a whole number of layers, at least 1")
        if k >= handle.num_layers:
            raise DrtframeError(f"--remove {k} leaves no layers: the model has {handle.num_layers}")
        if batch_size < 1:
            raise DrtframeError("--batch-size must be at least 1")
        tokens = None
        if self.scorer.needs_calibration:
            status(f"tokenising calibration text {calibration.source}")
            tokens = calibration_tokens(self.calibration(calibration), handle.tokenizer)
        chosen = 0

        def progress(steps: int) -> None:
            nonlocal chosen
            chosen += steps
            status(f"planning with {self.name}: {chosen}/{k} removals chosen")

        status(f"planning with {self.name}")
        return self.schedule.plan(self.scorer, ScoringContext(handle, tokens, batch_size), k, progress)


def resolve_method(registry: Registry, spec: str, options: Mapping[str, str] | None = None,
                   readout: str | None = None) -> Method:
    """Parse `scorer` or `scorer@schedule`; split `options` between the two by their schemas.

    `readout` (a command's --readout) becomes the `readout` option of a scorer or schedule that has one,
    unless `options` set it.

    The scorer and schedule answer through their checks (`drtframe.plugin_system.checks`), so what
    they return is checked wherever they are called from.
    """
    scorer_name, _, schedule_name = spec.partition("@")
    scorer_entry = registry.entry("scorer", scorer_name)
    scorer_cls = scorer_entry.obj
    schedule_entry = registry.entry("schedule", schedule_name or scorer_cls.default_schedule)
    schedule_cls = schedule_entry.obj
    options = dict(options or {})
    if readout and "readout" not in options and ("readout" in scorer_cls.Options.model_fields
                                                 or "readout" in schedule_cls.Options.model_fields):
        options["readout"] = readout
    scorer_keys = {k: v for k, v in options.items() if k in scorer_cls.Options.model_fields}
    schedule_keys = {k: v for k, v in options.items() if k in schedule_cls.Options.model_fields}
    unknown = set(options) - set(scorer_keys) - set(schedule_keys)
    if unknown:
        known = list(scorer_cls.Options.model_fields) + list(schedule_cls.Options.model_fields)
        raise unknown_name(f"option of {spec}", sorted(unknown)[0], known)
    scorer = scorer_cls(build_options(scorer_cls.Options, scorer_keys, scorer_name))
    schedule = schedule_cls(build_options(schedule_cls.Options, schedule_keys, schedule_cls.name))
    return Method(f"{scorer_cls.name}@{schedule_cls.name}", checked(scorer, scorer_entry, SCORER_CHECKS),
                  checked(schedule, schedule_entry, SCHEDULE_CHECKS))
