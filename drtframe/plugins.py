"""The plugin manager and the registry of named methods it builds.

Nothing is loaded as an import side effect: `plugin_manager()` makes a fresh manager, loads the
`drtframe` entry-point group (built-ins take that path too), and records every plugin that fails
to import, to validate or to register, so the others still work and `drtframe plugins` can show
what broke. Set DRTFRAME_BLOCK_PLUGINS=name1,name2 to skip entry points by name.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points

import pluggy

from . import hookspecs
from .errors import DrtframeError
from .suggest import unknown_name

ENTRY_POINT_GROUP = "drtframe"
BLOCK_ENV = "DRTFRAME_BLOCK_PLUGINS"

# kind -> the hook that registers it
KINDS = {
    "scorer": "drtframe_register_scorers",
    "schedule": "drtframe_register_schedules",
    "probe": "drtframe_register_probes",
    "benchmark": "drtframe_register_benchmarks",
    "architecture": "drtframe_register_architectures",
}


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, and why."""

    plugin: str
    distribution: str
    error: str


@dataclass(frozen=True)
class Entry:
    """One registered name: what it is, which object implements it, and who provided it."""

    kind: str
    name: str
    obj: object
    plugin: str
    distribution: str
    version: str
    description: str


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with drtframe's hookspecs, entry-point loading and failure records."""

    def __init__(self) -> None:
        super().__init__("drtframe")
        self.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._origins: dict[str, tuple[str, str]] = {}

    def register_plugin(self, plugin: object, name: str, distribution: str = "-", version: str = "-") -> bool:
        """Register one plugin; on a validation error (e.g. a misspelt hook) record it and skip it."""
        try:
            self.register(plugin, name=name)
            self.check_pending()
        except Exception as exc:  # a broken plugin must not take the others down
            if self.is_registered(plugin):
                self.unregister(plugin)
            self.failures.append(PluginFailure(name, distribution, _one_line(exc)))
            return False
        self._origins[name] = (distribution, version)
        return True

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        blocked = {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            if ep.name in blocked or self.is_blocked(ep.name) or self.get_plugin(ep.name) is not None:
                continue
            dist = ep.dist.name if ep.dist else "-"
            version = ep.dist.version if ep.dist else "-"
            try:
                plugin = ep.load()
            except Exception as exc:
                self.failures.append(PluginFailure(ep.name, dist, _one_line(exc)))
                continue
            self.register_plugin(plugin, ep.name, dist, version)

    def origin(self, plugin_name: str) -> tuple[str, str]:
        """(distribution, version) of a registered plugin, or ('-', '-') when not installed."""
        return self._origins.get(plugin_name, ("-", "-"))


def plugin_manager(load_entry_points: bool = True) -> PluginManager:
    """A fresh plugin manager, with the installed plugins loaded unless told otherwise."""
    pm = PluginManager()
    if load_entry_points:
        pm.load_entry_points()
    return pm


class Registry:
    """Every name the plugins registered, by kind. Built once from a plugin manager."""

    def __init__(self, pm: PluginManager) -> None:
        self.failures = list(pm.failures)
        self._entries: dict[tuple[str, str], Entry] = {}
        for kind, hook_name in KINDS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                self._collect(pm, kind, impl)

    def _collect(self, pm: PluginManager, kind: str, impl: pluggy.HookImpl) -> None:
        distribution, version = pm.origin(impl.plugin_name)
        pending: list[Entry] = []

        def register(obj: object) -> None:
            name = getattr(obj, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"{obj!r} has no 'name'")
            describe = getattr(obj, "description", "")
            description = describe() if callable(describe) else describe
            pending.append(Entry(kind, name, obj, impl.plugin_name, distribution, version, description))

        try:
            impl.function(**{arg: register for arg in impl.argnames})
        except Exception as exc:
            self.failures.append(PluginFailure(impl.plugin_name, distribution, f"{impl.function.__name__}: {_one_line(exc)}"))
            return
        for entry in pending:
            key = (entry.kind, entry.name)
            other = self._entries.get(key)
            if other is not None:
                raise DrtframeError(
                    f"{entry.kind} {entry.name!r} is registered twice: by plugin {other.plugin!r} "
                    f"(distribution {other.distribution}) and by plugin {entry.plugin!r} "
                    f"(distribution {entry.distribution}); uninstall one or block it with {BLOCK_ENV}")
            self._entries[key] = entry

    def entries(self, kind: str | None = None) -> list[Entry]:
        return sorted((e for e in self._entries.values() if kind in (None, e.kind)), key=lambda e: (e.kind, e.name))

    def names(self, kind: str) -> list[str]:
        return [e.name for e in self.entries(kind)]

    def get(self, kind: str, name: str) -> object:
        """The object registered as `name`, or an error that suggests close names."""
        entry = self._entries.get((kind, name))
        if entry is None:
            raise unknown_name(kind, name, self.names(kind))
        return entry.obj


def _one_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return " ".join(text.split())


def load_registry() -> Registry:
    """The registry of everything installed (what the CLI uses)."""
    return Registry(plugin_manager())
