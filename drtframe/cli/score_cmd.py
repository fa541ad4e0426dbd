"""`drtframe score`: per-layer importance scores and the order a method would remove layers in."""

from __future__ import annotations

import json

import click
from rich.table import Table

from .calibration_options import calibration_options
from .console import console, out
from .options import method_option_flag, model_options, output_file


@click.command("score")
@model_options
@click.option("--method", required=True, help="Method name, 'scorer' or 'scorer@schedule' (see 'drtframe plugins').")
@method_option_flag
@calibration_options
@click.option("--remove", "-k", type=int,
              help="How many removals the order covers (default: all layers but one; for the contiguous "
                   "schedule, the scorer's run length n, else 1).")
@output_file("--output", "-O", help="Also write scores and order as JSON here.")
def command(model, method, options, calibration, batch_size, remove, output) -> None:
    """Score every layer (lower = safer to remove) and print the removal order."""
    from ..plugin_system.manager import load_registry
    from ..plugin_system.options import parse_option_pairs
    from ..scoring.runner import ScoreRequest, run_score

    request = ScoreRequest(model, method, parse_option_pairs(options), calibration, batch_size, remove)
    with console.status("starting") as spinner:
        result = run_score(request, load_registry(), status=lambda msg: spinner.update(msg))
    _report(result)
    if output is not None:
        output.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        console.print(f"written to {output}")


def _report(result) -> None:
    plan = result.plan
    rank = {layer: position for position, layer in enumerate(plan.order, start=1)}
    calibration = result.calibration
    caption = ("lower = safer to remove; an iterative schedule shows its first round, "
               "a contiguous one each run at its first layer")
    if calibration is not None:
        caption += f"; calibration {calibration.source}, {calibration.n_samples} x {calibration.seq_len} tokens"
    table = Table(title=f"{result.method.name} on {result.request.model.source}", caption=caption)
    for column in ("layer", "score", "removed as"):
        table.add_column(column, justify="right")
    for layer, score in enumerate(plan.scores):
        table.add_row(str(layer), "-" if score is None else f"{score:.6g}", f"#{rank[layer]}" if layer in rank else "")
    out.print(table)
    out.print(f"removal order: {', '.join(map(str, plan.order))}")
