"""The plugin manager and the registry of named methods it builds.

Nothing is loaded as an import side effect: `plugin_manager()` makes a fresh manager, loads the
`drtframe` entry-point group (built-ins take that path too, first), and records every plugin that
fails to import, to validate or to register, so the others still work and `drtframe plugins` can
show what broke. Registration is all or nothing per plugin: a plugin whose hook raises, or that
registers a name another plugin already holds (the built-in or the first registrant keeps it),
leaves nothing of itself registered. Set DRTFRAME_BLOCK_PLUGINS=name1,name2 to skip entry points
by name.

`code_identity(cls)` is what a cached result computed by a plugin class depends on beyond its name
and options: the registry records which distribution provides each class it registers.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from weakref import WeakKeyDictionary

import pluggy

from ..errors import DrtframeError, DrtframeWarning
from . import hookspecs
from .faults import fault
from .kinds import KINDS
from .suggest import did_you_mean, unknown_name

ENTRY_POINT_GROUP = "drtframe"
BLOCK_ENV = "DRTFRAME_BLOCK_PLUGINS"
BUILTIN_DISTRIBUTION = "drtframe"

# Filled by every Registry: cached keys are made where only the class is at hand, not its entry.
_providers: WeakKeyDictionary[type, tuple[str, str]] = WeakKeyDictionary()  # class -> (distribution, version)
_source_digests: WeakKeyDictionary[type, str] = WeakKeyDictionary()


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, and why."""

    plugin: str
    distribution: str
    error: str

    def note(self) -> str:
        return f"plugin {self.plugin!r} failed to load: {self.error}"


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

    def provider(self) -> str:
        """"plugin 'p' (distribution 1.0)", for messages."""
        origin = f" ({self.distribution} {self.version})" if self.distribution != "-" else ""
        return f"plugin {self.plugin!r}{origin}"

    def who(self) -> str:
        """"scorer 'x' of plugin 'p' (distribution 1.0)", for messages about this entry."""
        return f"{self.kind} {self.name!r} of {self.provider()}"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with drtframe's hookspecs, entry-point loading and failure records."""

    def __init__(self) -> None:
        super().__init__("drtframe")
        self.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._origins: dict[str, tuple[str, str]] = {}  # in registration order

    def register_plugin(self, plugin: object, name: str, distribution: str = "-", version: str = "-") -> bool:
        """Register one plugin; on a validation error (e.g. a misspelt hook) record it and skip it."""
        try:
            self.register(plugin, name=name)
            self._check_hook_names(plugin)
        except Exception as exc:  # a broken plugin must not take the others down
            if self.is_registered(plugin):
                self.unregister(plugin)
            error = str(exc) if isinstance(exc, DrtframeError) else fault(exc, _module_of(plugin))
            self.failures.append(PluginFailure(name, distribution, error))
            return False
        self._origins[name] = (distribution, version)
        return True

    def _check_hook_names(self, plugin: object) -> None:
        """pluggy's check_pending for one plugin, with the closest real hook for a misspelt one."""
        for caller in self.get_hookcallers(plugin) or []:
            if caller.has_spec() or all(impl.optionalhook for impl in caller.get_hookimpls()):
                continue
            hint = did_you_mean(caller.name, KINDS.values(), n=1) or f"drtframe's hooks: {', '.join(KINDS.values())}"
            raise DrtframeError(f"unknown hook {caller.name!r} ({hint})")

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every entry point of `group` not blocked, drtframe's own first, then by name."""
        blocked = {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
        found = sorted(entry_points(group=group), key=lambda e: (_distribution(e) != BUILTIN_DISTRIBUTION, e.name))
        for name in sorted(blocked - {ep.name for ep in found}):
            hint = did_you_mean(name, [ep.name for ep in found]) or "list them with 'drtframe plugins'"
            warnings.warn(f"{BLOCK_ENV} names {name!r}, which is no installed plugin's entry point; {hint}",
                          DrtframeWarning, stacklevel=2)
        for ep in found:
            if ep.name in blocked or self.is_blocked(ep.name) or self.get_plugin(ep.name) is not None:
                continue
            dist = _distribution(ep)
            version = ep.dist.version if ep.dist else "-"
            try:
                plugin = ep.load()
            except Exception as exc:
                self.failures.append(PluginFailure(ep.name, dist, fault(exc, ep.module)))
                continue
            self.register_plugin(plugin, ep.name, dist, version)

    def origin(self, plugin_name: str) -> tuple[str, str]:
        """(distribution, version) of a registered plugin, or ('-', '-') when not installed."""
        return self._origins.get(plugin_name, ("-", "-"))

    def plugin_names(self) -> list[str]:
        """Registered plugins, in the order they were registered."""
        return list(self._origins)


def _distribution(ep) -> str:
    return ep.dist.name if ep.dist else "-"


def _module_of(plugin: object) -> str:
    """The module a plugin's code lives in (a plugin is a module, or an instance of a class)."""
    return getattr(plugin, "__name__", None) or type(plugin).__module__


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
        for plugin_name in pm.plugin_names():
            self._add_plugin(pm, plugin_name)

    def _add_plugin(self, pm: PluginManager, plugin_name: str) -> None:
        """Everything one plugin registers, or nothing of it when a hook raises or a name is taken."""
        distribution, version = pm.origin(plugin_name)
        plugin = pm.get_plugin(plugin_name)
        pending: dict[tuple[str, str], Entry] = {}

        for kind, hook_name in KINDS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != plugin_name:
                    continue

                def register(obj: object, kind: str = kind) -> None:
                    name = getattr(obj, "name", None)
                    if not isinstance(name, str) or not name:
                        raise TypeError(f"{obj!r} has no 'name'")
                    if (kind, name) in pending:
                        raise DrtframeError(f"registers {kind} {name!r} twice")
                    describe = getattr(obj, "description", "")
                    description = describe() if callable(describe) else describe
                    pending[kind, name] = Entry(kind, name, obj, plugin_name, distribution, version, description)

                try:
                    impl.function(**{arg: register for arg in impl.argnames})
                except Exception as exc:
                    error = str(exc) if isinstance(exc, DrtframeError) else fault(exc, _module_of(plugin))
                    self.failures.append(PluginFailure(plugin_name, distribution, f"{hook_name}: {error}"))
                    return
        taken = [(entry, self._entries[key]) for key, entry in pending.items() if key in self._entries]
        if taken:
            entry, holder = taken[0]
            self.failures.append(PluginFailure(plugin_name, distribution, (
                f"{entry.kind} name {entry.name!r} is taken by {holder.provider()}; block one of the two "
                f"with {BLOCK_ENV}, or uninstall one")))
            return
        self._entries.update(pending)
        for entry in pending.values():  # a manual registration ('-') does not hide a known distribution
            if isinstance(entry.obj, type) and (distribution != "-" or entry.obj not in _providers):
                _providers[entry.obj] = (distribution, version)

    def entries(self, kind: str | None = None) -> list[Entry]:
        return sorted((e for e in self._entries.values() if kind in (None, e.kind)), key=lambda e: (e.kind, e.name))

    def names(self, kind: str) -> list[str]:
        return [e.name for e in self.entries(kind)]

    def failure_notes(self) -> list[str]:
        """One line per plugin that failed to load, to say where a missing name may have gone."""
        return [f.note() for f in self.failures]

    def entry(self, kind: str, name: str) -> Entry:
        """The entry registered as `name`, or an error that suggests close names and names failed plugins."""
        entry = self._entries.get((kind, name))
        if entry is None:
            raise unknown_name(kind, name, self.names(kind), self.failure_notes())
        return entry

    def get(self, kind: str, name: str) -> object:
        """The object registered as `name` (see `entry`)."""
        return self.entry(kind, name).obj


def code_identity(cls: type) -> dict:
    """What a cached result of plugin class `cls` depends on beyond its name and options, so that an
    edited plugin is not served what its old code computed: the distribution and version a registry
    recorded as providing it ('-' if none did), and the SHA-256 of its module's source file.

    The digest is taken once per class object: a process runs the code it imported, so a file edited
    after the import must not relabel what the old code still computes. A class with no readable
    source file (typed at the prompt, compiled) is named instead: stable, but blind to its edits.
    """
    if cls not in _source_digests:
        try:
            path = inspect.getsourcefile(cls)
            source = hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
        except (TypeError, OSError):
            source = None
        _source_digests[cls] = source or f"no source file: {cls.__module__}.{cls.__qualname__}"
    distribution, version = _providers.get(cls, ("-", "-"))
    return {"distribution": distribution, "version": version, "source": _source_digests[cls]}


def load_registry() -> Registry:
    """The registry of everything installed (what the CLI uses)."""
    return Registry(plugin_manager())
