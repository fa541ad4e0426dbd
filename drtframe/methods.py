"""Turn a method name such as `block_influence@iterative` into a configured scorer and schedule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import DrtframeError
from .options import build_options
from .plugins import Registry
from .schedule import Schedule
from .scoring import Scorer
from .suggest import unknown_name


@dataclass(frozen=True)
class Method:
    """A scorer paired with the schedule that turns its scores into removals."""

    name: str
    scorer: Scorer
    schedule: Schedule


def resolve_method(registry: Registry, spec: str, options: Mapping[str, str] | None = None) -> Method:
    """Parse `scorer` or `scorer@schedule`; split `options` between the two by their schemas."""
    scorer_name, _, schedule_name = spec.partition("@")
    scorer_cls = registry.get("scorer", scorer_name)
    schedule_cls = registry.get("schedule", schedule_name or scorer_cls.default_schedule)
    options = dict(options or {})
    scorer_keys = {k: v for k, v in options.items() if k in scorer_cls.Options.model_fields}
    schedule_keys = {k: v for k, v in options.items() if k in schedule_cls.Options.model_fields}
    unknown = set(options) - set(scorer_keys) - set(schedule_keys)
    if unknown:
        known = list(scorer_cls.Options.model_fields) + list(schedule_cls.Options.model_fields)
        raise unknown_name(f"option of {spec}", sorted(unknown)[0], known)
    scorer = scorer_cls(build_options(scorer_cls.Options, scorer_keys, scorer_name))
    schedule = schedule_cls(build_options(schedule_cls.Options, schedule_keys, schedule_cls.name))
    return Method(f"{scorer_cls.name}@{schedule_cls.name}", scorer, schedule)


def find_architecture(registry: Registry, model_type: str):
    """The registered Architecture that handles `config.model_type`, or a clear error."""
    supported = []
    for arch in (e.obj for e in registry.entries("architecture")):
        if model_type in arch.model_types:
            return arch
        supported.extend(arch.model_types)
    raise DrtframeError(
        f"drtframe does not know where the decoder blocks of model type {model_type!r} live; "
        f"supported: {', '.join(sorted(supported))} (a plugin can add more)")
