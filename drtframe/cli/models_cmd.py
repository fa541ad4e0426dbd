"""`drtframe models`: the model aliases and whether each is already converted in the cache."""

from __future__ import annotations

import click
from rich.table import Table

from .console import out


@click.command("models")
def command() -> None:
    """List model aliases usable as --model, and whether each is cached."""
    from ..models.aliases import ALIASES, alias_dir, is_cached

    table = Table(title="model aliases")
    for column in ("alias", "description", "source", "cached"):
        table.add_column(column, overflow="fold")
    for alias in ALIASES.values():
        cached = f"yes ({alias_dir(alias)})" if is_cached(alias) else "no (fetched on first use)"
        table.add_row(alias.name, alias.description, alias.source, cached)
    out.print(table)
