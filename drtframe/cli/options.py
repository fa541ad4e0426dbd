"""Options shared by every command that loads a model, declared once."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..models.loading import DEVICES, DTYPES, ModelSpec
from ..models.placement import DEVICE_MAPS


def model_options(func=None, *, default: str | None = None):
    """Add --model, --tokenizer, --device, --device-map, --max-memory, --dtype and --trust-remote-code;
    pass a ModelSpec as `model`.

    Use as `@model_options` (--model required) or `@model_options(default="alias")`.
    """
    if func is None:
        return functools.partial(model_options, default=default)

    @click.option("--model", "-m", "model", required=default is None, default=default, show_default=True,
                  help="Model directory, .gguf file, hub id, or alias (see 'drtframe models').")
    @click.option("--tokenizer", metavar="PATH_OR_ID",
                  help="Load the tokenizer from here instead (for a model saved without one).")
    @click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                  help="auto picks cuda, then mps, then cpu.")
    @click.option("--device-map", type=click.Choice(DEVICE_MAPS),
                  help="Spread the model over the GPUs, CPU memory and disk (accelerate); instead of --device.")
    @click.option("--max-memory", metavar="DEVICE=SIZE,...",
                  help="With --device-map: the most it may put on each device, e.g. cpu=2GiB,cuda:0=70GiB.")
    @click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True,
                  help="auto is float32 on cpu, bfloat16 elsewhere.")
    @click.option("--trust-remote-code", is_flag=True, help="Allow the model's own Python code to run.")
    @functools.wraps(func)
    def wrapper(*args, model, tokenizer, device, device_map, max_memory, dtype, trust_remote_code, **kwargs):
        from transformers.utils import logging as hf_logging

        from ..models.placement import check_placement

        check_placement(device, device_map, max_memory)  # one line now, not after the data is read
        hf_logging.disable_progress_bar()  # drtframe shows its own progress
        return func(*args, model=ModelSpec(model, device, dtype, trust_remote_code, tokenizer, device_map, max_memory),
                    **kwargs)

    return wrapper


def parse_int_list(text: str | None, flag: str = "--layers", what: str = "layer indices",
                   example: str = "3,7,9") -> tuple[int, ...] | None:
    """'3,7,9' -> (3, 7, 9); a clear error naming `flag` for anything that is not a comma-separated int list."""
    if text is None:
        return None
    from ..errors import DrtframeError

    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise DrtframeError(f"{flag} expects comma-separated {what} such as {example}, got {text!r}") from None


readout_option = click.option(
    "--readout", type=click.Choice(["logit", "tuned"]), default="logit", show_default=True,
    help="How layers before the last are read: the logit lens, or the tuned lens (fitted once per model on the "
         "packaged calibration text, about 3 minutes for SmolLM2 on 2 CPU cores, then cached).")


method_option_flag = click.option(
    "--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
    help="A method option, e.g. -o seed=3 (repeatable; unknown keys are refused).")


def output_file(*decls: str, help: str):
    """An option naming a file to write. Its directory is made when the command line is read (as
    `mkdir -p` would), so a missing one costs nothing, and a path that cannot be a file costs one
    line before the work instead of a crash after it."""
    return click.option(*decls, type=click.Path(path_type=Path), callback=_prepare_output_file,
                        help=help)


def _prepare_output_file(ctx: click.Context, param: click.Parameter, path: Path | None) -> Path | None:
    from ..errors import DrtframeError

    if path is None:
        return None
    if path.is_dir():
        raise DrtframeError(f"{param.opts[0]} {path} is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DrtframeError(f"{param.opts[0]} {path}: cannot make its directory ({exc.strerror}: "
                            f"{exc.filename})") from None
    return path
