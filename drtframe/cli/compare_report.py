"""How `drtframe compare` looks in a terminal: one progress bar over the grid, then a table per benchmark."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..comparison.request import NO_HEALER
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


def render(result, out: Console) -> None:
    """Per benchmark: methods by budget, acc and retention; the best acc per budget in bold green,
    variants the guard finds collapsed in red with a cross, methods that stopped early say where,
    and cells whose work raised say 'error' (the errors follow the tables)."""
    for bench in result.benchmarks:
        name = bench["name"]
        dense = result.dense(name)
        table = Table(title=f"{name} ({bench['split']}, {bench['format']}, n={bench['n']}): dense acc "
                            f"{dense['acc']:.3f} ± {dense['acc_stderr']:.3f}, chance {bench['chance']:.3f}",
                      caption="acc (retention = acc / dense acc); ✗ collapsed: no decision transition on the guard items")
        table.add_column("method")
        for k in result.budgets:
            table.add_column(f"K={k}", justify="right")
        best = {k: max((cell["acc"] for m, h in result.lines() if (cell := result.cell(m, k, name, h))),
                       default=None) for k in result.budgets}
        for method, healer in result.lines():
            row = [result.label(method, healer)]
            for k in result.budgets:
                cell = result.cell(method, k, name, healer)
                if cell is None:
                    failed = result.error(method, k, name, healer) is not None
                    row.append("[red]error[/]" if failed else f"[dim]stopped after {method.stopped_after}[/]")
                    continue
                text = f"{cell['acc']:.3f} ({result.retention(cell, name):.0%})"
                if result.collapsed(method.removed[k], healer):
                    text = f"[red]{text} ✗[/]"
                elif cell["acc"] == best[k]:
                    text = f"[bold green]{text}[/]"
                row.append(text)
            table.add_row(*row)
        out.print(table)
    for method in result.methods:
        if method.message:
            out.print(f"[dim]{method.message}[/]", highlight=False)
        if method.error:
            out.print(f"[red]{method.method}: planning failed: {method.error}[/]", highlight=False)
    for (removed, healer, what), error in result.failures.items():
        variant = f"without {','.join(map(str, removed))}" + ("" if healer == NO_HEALER else f" + {healer}")
        out.print(f"[red]{what}, {variant}: {error}[/]", highlight=False)
