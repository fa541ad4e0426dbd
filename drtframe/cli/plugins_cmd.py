"""`drtframe plugins`: what is installed, who provides it, and which plugins failed to load."""

from __future__ import annotations

import click
from rich.table import Table

from .console import out


@click.command("plugins")
def command() -> None:
    """List registered scorers, schedules, probes, benchmarks and architectures."""
    from ..plugins import load_registry

    registry = load_registry()
    table = Table(title="drtframe plugins")
    for column in ("name", "kind", "distribution", "version", "description"):
        table.add_column(column, overflow="fold")
    for e in registry.entries():
        table.add_row(e.name, e.kind, e.distribution, e.version, e.description)
    out.print(table)
    if registry.failures:
        failed = Table(title="plugins that failed to load", title_style="bold red")
        for column in ("plugin", "distribution", "error"):
            failed.add_column(column, overflow="fold")
        for f in registry.failures:
            failed.add_row(f.plugin, f.distribution, f.error)
        out.print(failed)
