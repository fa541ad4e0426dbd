"""docs/cli.md, generated from the click definitions, so the command reference cannot drift from the code.

Regenerate it with `python -m drtframe.cli.reference > docs/cli.md`; tests/test_docs.py fails when
it is stale. Each command's section is its `--help` at a fixed width (as llm's docs do).
"""

from __future__ import annotations

import click

WIDTH = 100

HEADER = """\
# Command reference

<!-- Generated from the click definitions by `python -m drtframe.cli.reference > docs/cli.md`;
tests/test_docs.py fails when this file is stale. Do not edit by hand. -->

Every command that loads a model takes `--model` (a directory, a `.gguf` file, a hub id or an
alias), `--tokenizer` (for a model saved without one), `--device` (or `--device-map auto` with
`--max-memory`, to spread a large model over GPUs, CPU memory and disk), `--dtype` and
`--trust-remote-code`. Bad input gets one line and exit status 2; `prune` exits 3 when the collapse
guard refuses.

**On a busy CPU**, set `OMP_NUM_THREADS=1` (or a few threads) in front of a command: torch starts
one thread per core, and when other work holds those cores its threads fight over them
(oversubscription) and every forward pass slows down. In library use, `torch.set_num_threads(n)`
does the same.
"""


def _help(command: click.Command, parent: click.Context | None, name: str) -> str:
    ctx = click.Context(command, info_name=name, parent=parent, max_content_width=WIDTH, terminal_width=WIDTH)
    return command.get_help(ctx)


def render() -> str:
    """The whole of docs/cli.md."""
    from . import cli

    root = click.Context(cli, info_name="drtframe", max_content_width=WIDTH, terminal_width=WIDTH)
    parts = [HEADER, "## drtframe\n", f"```text\n{_help(cli, None, 'drtframe')}\n```\n"]
    for name in cli.list_commands(root):
        parts += [f"## drtframe {name}\n", f"```text\n{_help(cli.get_command(root, name), root, name)}\n```\n"]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
