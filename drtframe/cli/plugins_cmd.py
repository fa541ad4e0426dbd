"""`drtframe plugins`: what is installed, who provides it, and which plugins failed to load.

The listing fits an 80-column terminal: grouped by kind, one line per name, a large family of names
(`mmlu_<subject>`) folded into one row. `drtframe plugins NAME` shows one entry in full (its
options, from its Options model, and its docstring); `--json` gives every entry, unfolded, to scripts.
"""

from __future__ import annotations

import inspect
import json

import click
from rich.table import Table
from rich.text import Text

from ..plugin_system.kinds import KINDS
from .console import out

FOLD_AT = 5  # a name with this many `name_*` siblings from the same plugin shows them as one row
PLUGIN_WIDTH = 20  # a longer plugin name is cut in the listing, shown whole with NAME
# per kind, the class attributes worth showing with an entry
FACTS = {
    "scorer": ("default_schedule", "needs_calibration"),
    "schedule": ("prefix_consistent",),
    "benchmark": ("dataset_path", "dataset_name", "split", "native_format"),
    "architecture": ("model_types", "layers_path", "final_norm_path"),
}


@click.command("plugins")
@click.argument("name", required=False)
@click.option("--kind", type=click.Choice(list(KINDS)), help="Only names of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every name, unfolded, with its options).")
def command(name, kind, as_json) -> None:
    """List what the plugins registered, by kind, and who provides it; or show NAME in full."""
    from ..plugin_system.manager import load_registry
    from ..plugin_system.suggest import unknown_name

    registry = load_registry()
    entries = registry.entries(kind)
    if name is not None:
        entries = [e for e in entries if e.name == name]
        if not entries:
            raise unknown_name(kind or "name", name, {e.name for e in registry.entries(kind)},
                               registry.failure_notes())
    if as_json:
        failures = [vars(f) for f in registry.failures] if name is None else []
        click.echo(json.dumps({"entries": [record(e) for e in entries], "failures": failures}, indent=2))
    elif name is not None:
        for entry in entries:
            _show(entry)
    else:
        _list(entries, registry.failures)


def record(entry) -> dict:
    """Everything about one entry, JSON-ready."""
    obj = entry.obj
    options = obj.Options.model_json_schema().get("properties", {}) if hasattr(obj, "Options") else {}
    doc = inspect.cleandoc(obj.__doc__ or "") if isinstance(obj, type) else entry.description
    facts = {attr: getattr(obj, attr) for attr in FACTS.get(entry.kind, ()) if hasattr(obj, attr)}
    return {"kind": entry.kind, "name": entry.name, "plugin": entry.plugin, "distribution": entry.distribution,
            "version": entry.version, "description": entry.description, "doc": doc,
            "options": {key: {k: v for k, v in spec.items() if k != "title"} for key, spec in options.items()},
            **({"facts": facts} if facts else {})}


def _rows(entries) -> list[tuple[str, str, str]]:
    """(name, plugin, description) per entry; families of FOLD_AT or more `name_*` names become one row."""
    folded: dict[str, list] = {}
    for entry in entries:
        family = [e for e in entries if e.name.startswith(entry.name + "_") and e.plugin == entry.plugin]
        if len(family) >= FOLD_AT:
            folded[entry.name] = family
    hidden = {e.name for family in folded.values() for e in family}
    rows = []
    for entry in entries:
        if entry.name in hidden:
            continue
        rows.append((entry.name, entry.plugin, entry.description))
        family = folded.get(entry.name)
        if family:
            rows.append((f"{entry.name}_*", entry.plugin,
                         f"{len(family)} more: {family[0].name}, {family[1].name}, ... {family[-1].name}"))
    return rows


def _list(entries, failures) -> None:
    from ..plugin_system.manager import BUILTIN_DISTRIBUTION

    sections = [(kind, _rows([e for e in entries if e.kind == kind])) for kind in KINDS]
    rows = [row for _, kind_rows in sections for row in kind_rows]
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1), expand=True)
    table.add_column(no_wrap=True, min_width=max((len(r[0]) + 2 for r in rows), default=0))
    plugin_width = min(max((len(r[1]) for r in rows), default=0), PLUGIN_WIDTH)
    table.add_column(no_wrap=True, style="dim", overflow="ellipsis", min_width=plugin_width, max_width=plugin_width)
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for kind, kind_rows in sections:
        if kind_rows:
            table.add_row(Text(f"{kind}s", style="bold"), "", "")
            for name, plugin, description in kind_rows:
                table.add_row(f"  {name}", plugin, description)
    out.print(table)
    others = {e.plugin: f"{e.distribution} {e.version}" for e in entries if e.distribution != BUILTIN_DISTRIBUTION}
    if others:
        out.print(Text("plugins from other distributions", style="bold"))
        for plugin, distribution in sorted(others.items()):
            out.print(f"  {plugin}: {distribution}", highlight=False)
    out.print("second column: the plugin's entry-point name (what DRTFRAME_BLOCK_PLUGINS takes)\n"
              "'drtframe plugins NAME': one entry with its options and docstring", style="dim", highlight=False)
    if failures:
        out.print(Text("plugins that failed to load", style="bold red"))
        for f in failures:
            out.print(f"  {f.plugin} ({f.distribution}): {f.error}", highlight=False)


def _show(entry) -> None:
    r = record(entry)
    out.print(Text(f"{entry.name} ({entry.kind})", style="bold"))
    out.print(f"provided by {entry.provider()}", highlight=False)
    for attr, value in r.get("facts", {}).items():
        shown = ", ".join(value) if isinstance(value, tuple) else value
        out.print(f"{attr}: {shown}", highlight=False)
    if r["options"]:
        flag = {"scorer": " (-o KEY=VALUE)", "schedule": " (-o KEY=VALUE)", "probe": " (-p KEY=VALUE)"}
        out.print(Text(f"options{flag.get(entry.kind, '')}", style="bold"))
        for key, spec in r["options"].items():
            kind = spec.get("type") or " or ".join(t.get("type", "?") for t in spec.get("anyOf", []))
            default = f" = {spec['default']!r}" if "default" in spec else ""
            note = f"  {spec['description']}" if "description" in spec else ""
            out.print(f"  {key}: {kind}{default}{note}", highlight=False)
    elif hasattr(entry.obj, "Options"):
        out.print("options: none")
    if r["doc"]:
        out.print()
        out.print(r["doc"], highlight=False)
