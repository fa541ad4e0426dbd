"""The `drtframe` command: a thin click group; each command lives in its own module."""

from __future__ import annotations

import gc
import sys
import warnings

import click

from ..errors import DrtframeError, DrtframeWarning
from .console import console


class _Group(click.Group):
    """Turns drtframe's errors into one line and their exit status, its warnings into one line each,
    and Ctrl-C into a clean stop."""

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", DrtframeWarning)
                warnings.showwarning = _show_warning(warnings.showwarning)
                return super().invoke(ctx)
        except DrtframeError as exc:
            console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            console.print("[yellow]Interrupted; nothing was written.[/]")
            ctx.exit(130)


def _show_warning(show):
    def one_line(message, category, *args, **kwargs):
        if issubclass(category, DrtframeWarning):
            console.print(f"[bold yellow]Warning:[/] {message}", highlight=False, soft_wrap=True)
        else:
            show(message, category, *args, **kwargs)
    return one_line


@click.group(cls=_Group)
@click.version_option(package_name="drtframe")
def cli() -> None:
    """Layer pruning for LLMs that sees the Silent and Decisive phases of the model's decision."""


def _register_commands() -> None:
    """Add every `*_cmd` module's `command`: one module per command, nothing to edit here."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name.endswith("_cmd"):
            cli.add_command(importlib.import_module(f"{__name__}.{info.name}").command)


_register_commands()


def main() -> None:
    try:
        cli(prog_name="drtframe")
    finally:
        # The interpreter's last garbage collection walks every object torch and transformers made at
        # import, 0.5 s of a 10 s `drtframe eval` here; frozen objects are skipped. Nothing is left to
        # collect that matters: files and workers are closed by then, and the process is ending.
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
