"""Options shared by every command that loads a model, declared once."""

from __future__ import annotations

import functools

import click

from ..models.loading import DEVICES, DTYPES, ModelSpec


def model_options(func=None, *, default: str | None = None):
    """Add --model, --device, --dtype and --trust-remote-code; pass a ModelSpec as `model`.

    Use as `@model_options` (--model required) or `@model_options(default="alias")`.
    """
    if func is None:
        return functools.partial(model_options, default=default)

    @click.option("--model", "-m", "model", required=default is None, default=default, show_default=True,
                  help="Model directory, .gguf file, hub id, or alias (see 'drtframe models').")
    @click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                  help="auto picks cuda, then mps, then cpu.")
    @click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True,
                  help="auto is float32 on cpu, bfloat16 elsewhere.")
    @click.option("--trust-remote-code", is_flag=True, help="Allow the model's own Python code to run.")
    @functools.wraps(func)
    def wrapper(*args, model, device, dtype, trust_remote_code, **kwargs):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # drtframe shows its own progress
        return func(*args, model=ModelSpec(model, device, dtype, trust_remote_code), **kwargs)

    return wrapper


def parse_layer_list(text: str | None) -> tuple[int, ...] | None:
    """'3,7,9' -> (3, 7, 9); a clear error for anything that is not a comma-separated int list."""
    if text is None:
        return None
    from ..errors import DrtframeError

    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise DrtframeError(f"--layers expects comma-separated layer indices such as 3,7,9, got {text!r}") from None


method_option_flag = click.option(
    "--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
    help="A method option, e.g. -o seed=3 (repeatable; unknown keys are refused).")
