"""How `drtframe compare` looks in a terminal: one progress bar over the grid, then a table per benchmark."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..comparison.request import NO_HEALER
from ..comparison.tables import BEST, COLLAPSED, TIED, Entry, bench_tables
from .console import console


@contextmanager
def grid_progress():
    """A progress bar over every piece of the grid (plans, profiles, cells), with how many came from the cache."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[cached]} cached"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, transient=True)
    task = progress.add_task("starting", total=None, cached=0)

    def report(p) -> None:
        progress.update(task, completed=p.done, total=p.total, description=p.description, cached=p.cached)

    with progress:
        yield progress, report


def render(result, out: Console, show: tuple[str, ...] = ()) -> None:
    """Per benchmark, methods by K (drtframe.comparison.tables): the best cell per K in bold green with
    ★, cells not separable from it in green with ≈, collapsed variants in red with ✗, methods that
    stopped early say where, cells whose work raised say 'error' (the errors follow the tables);
    `show` adds the intervals and/or the agreement under each cell."""
    for spec in bench_tables(result, show):
        table = Table(title=spec.title, caption=spec.caption)
        table.add_column("method")
        for k in spec.budgets:
            table.add_column(f"K={k}", justify="right")
        for label, entries in spec.rows:
            table.add_row(label, *(_styled(entry) for entry in entries))
        out.print(table)
    for method in result.methods:
        if method.message:
            out.print(f"[dim]{method.message}[/]", highlight=False)
        if method.error:
            out.print(f"[red]{method.method}: planning failed: {method.error}[/]", highlight=False)
    for (removed, healer, what), error in result.failures.items():
        variant = f"without {','.join(map(str, removed))}" + ("" if healer == NO_HEALER else f" + {healer}")
        out.print(f"[red]{what}, {variant}: {error}[/]", highlight=False)


def _styled(entry: Entry) -> str:
    if entry.missing:
        return f"[red]{entry.missing}[/]" if entry.missing == "error" else f"[dim]{entry.missing}[/]"
    text = entry.text + (" ★" if BEST in entry.marks else " ≈" if TIED in entry.marks else "")
    if COLLAPSED in entry.marks:
        text = f"[red]{text} ✗[/]"
    elif BEST in entry.marks:
        text = f"[bold green]{text}[/]"
    elif TIED in entry.marks:
        text = f"[green]{text}[/]"
    return "\n".join([text, *(f"[dim]{line}[/]" for line in entry.details)])
