"""Heal then remove: the order every command follows (the healer must see the blocks it replaces)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import DrtframeError
from ..models.handle import ModelHandle
from ..plugin_system.manager import Registry
from ..plugin_system.options import build_options
from ..scoring.calibration import CalibrationSpec, calibration_tokens
from .healer import Healer, HealingContext


def resolve_healer(registry: Registry, name: str, options: Mapping[str, str] | None = None) -> Healer:
    """The named healer with its options (unknown names and keys fail with one line)."""
    cls = registry.get("healer", name)
    return cls(build_options(cls.Options, dict(options or {}), cls.name))


def heal(handle: ModelHandle, removed: tuple[int, ...], healer: Healer, calibration: CalibrationSpec,
         batch_size: int = 8, status: Callable[[str], None] = lambda message: None) -> dict:
    """Fit `healer` on the calibration text and change `handle`'s kept weights in place; its record,
    with the healer's name, options and calibration."""
    if not removed:
        raise DrtframeError(f"healer {healer.name} needs removed blocks; nothing is removed")
    if handle.offloaded:
        raise DrtframeError(f"healer {healer.name} changes weights in place, but the device map keeps "
                            f"{len(handle.offloaded)} weights off-device ({handle.offloaded[0]}, ...); give it "
                            f"more --max-memory so that every weight stays on a device")
    status(f"tokenising calibration text {calibration.source}")
    tokens = calibration_tokens(calibration, handle.tokenizer)
    status(f"healing with {healer.name}")
    record = healer.heal(HealingContext(handle, tuple(sorted(removed)), tokens, batch_size=batch_size))
    return {"healer": healer.name, "options": healer.options.model_dump(), "calibration": calibration.as_dict(),
            "standard_architecture": healer.standard_architecture, **record}
