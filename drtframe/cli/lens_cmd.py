"""`drtframe lens`: fit (or load) a model's tuned lens and show how well each block's readout fits."""

from __future__ import annotations

import click
from rich.table import Table

from .console import console, out
from .options import model_options, output_file


@click.command("lens")
@model_options
@output_file("--plot", help="Draw the held-out KL per block under both lenses as PNG.")
def command(model, plot) -> None:
    """Fit the tuned lens of a model (once; cached by its fingerprint) and print its held-out KL per block.

    The KL is from the model's own next-token distribution to each block's readout, in nats, on
    calibration text the fit never saw: lower means the block's prediction is read more faithfully.
    """
    from ..models.loading import load_model
    from ..plugin_system.manager import load_registry
    from ..probing.tuned_lens import tuned_lens_for

    registry = load_registry()
    with console.status(f"loading {model.source}") as spinner:
        handle = load_model(model, registry)
        lens = tuned_lens_for(handle, lambda message: spinner.update(message))
    report = lens.report
    table = Table(title=f"tuned lens of {model.source}: held-out KL to the model's output (nats)",
                  caption=f"{report['train_tokens']} training and {report['held_out_tokens']} held-out tokens of "
                          f"{report['text']}; {report['steps']} steps; fitted in {report['seconds']} s")
    for name in ("block", "logit lens", "tuned lens"):
        table.add_column(name, justify="right")
    for block, (logit, tuned) in enumerate(zip(report["logit_kl"], report["tuned_kl"])):
        table.add_row(str(block), f"{logit:.3f}", f"{tuned:.3f}")
    out.print(table)
    if plot:
        from ..probing.plots import plot_lens_fit

        plot_lens_fit(report, plot, f"{model.source}: held-out KL per block")
        console.print(f"plot written to {plot}")
