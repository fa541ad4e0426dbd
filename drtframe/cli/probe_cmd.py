"""`drtframe probe`: the decision at every layer, the Silent/Decisive transition, and pictures of it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .calibration_options import calibration_options
from .console import console, out
from .options import method_option_flag, model_options, output_file, readout_option


@click.command("probe")
@model_options
@click.option("--benchmark", "-b", required=True, help="Benchmark name or YAML task file.")
@click.option("--format", "fmt", type=click.Choice(["cloze", "letter"]), help="Default: the benchmark's own.")
@click.option("--limit", type=int, help="Probe only the first N items.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Local benchmark data tree.")
@click.option("--split", help="Probe this split instead of the one lm-eval uses.")
@click.option("--probes", default="decision_margin,option_frequency", show_default=True,
              help="Comma-separated probe names (see 'drtframe plugins').")
@click.option("--probe-option", "-p", "probe_options", multiple=True, metavar="KEY=VALUE",
              help="A probe option, e.g. -p eps=0.5 for noise_sensitivity (repeatable).")
@output_file("--output", "-O", help="Write the profile as JSON.")
@output_file("--plot", help="Draw the profile as PNG.")
@readout_option
@click.option("--trace", type=int, help="Also remove this many blocks one at a time and probe after each.")
@click.option("--method", help="The method --trace removes blocks with.")
@method_option_flag
@calibration_options
def command(model, benchmark, fmt, limit, data_dir, split, probes, probe_options, output, plot, readout, trace,
            method, options, calibration, batch_size) -> None:
    """Read the model's decision at every layer through a logit (or tuned) lens and locate the transition."""
    from ..errors import DrtframeError
    from ..evaluation.report import write_json
    from ..evaluation.runner import load_items, resolve_benchmark
    from ..models.loading import load_model
    from ..plugin_system.manager import load_registry
    from ..plugin_system.options import parse_option_pairs
    from ..probing.plots import plot_profile, plot_trace
    from ..probing.report import configured_probes, plotted_metrics, run_probes
    from ..probing.trace import trace_removals
    from ..probing.tuned_lens import tuned_lens_for
    from ..scoring.methods import resolve_method
    from .progress import item_progress

    if limit is not None and limit < 1:
        raise DrtframeError("--limit must be at least 1")
    if (trace is None) != (method is None):
        raise DrtframeError("--trace and --method go together")
    registry = load_registry()
    bench = resolve_benchmark(registry, benchmark, split)
    chosen = configured_probes(registry, [n.strip() for n in probes.split(",") if n.strip()],
                               parse_option_pairs(probe_options))
    planner = resolve_method(registry, method, parse_option_pairs(options), readout) if method else None
    items = load_items(bench, fmt, limit, data_dir)
    with console.status(f"loading {model.source}"):
        handle = load_model(model, registry)
    if trace is not None and not 1 <= trace < handle.num_layers:
        raise DrtframeError(f"--trace must be between 1 and {handle.num_layers - 1}")
    lens = None
    if readout == "tuned":
        with console.status("tuned lens") as spinner:
            lens = tuned_lens_for(handle, lambda message: spinner.update(message))
    with item_progress() as progress:
        task = progress.add_task(f"probing {bench.name}", total=len(items))
        report, profile = run_probes(handle, items, chosen, progress=lambda n: progress.advance(task, n),
                                     readout=readout)
    report.update({"model": model.source, "benchmark": bench.name, "format": fmt or bench.native_format,
                   "split": bench.split, "readout": readout})
    if lens is not None:
        report["tuned_lens"] = lens.report
    if trace is not None:
        report["trace"] = trace_removals(handle, items, planner, trace, calibration, batch_size, console.print,
                                         readout)
    out.print(_table(report))
    if output:
        write_json(output, report)
        console.print(f"profile written to {output}")
    if plot:
        title = f"{model.source} on {bench.name} ({report['format']}, n={len(items)}, {readout} lens)"
        plot_profile(profile, plot, title, plotted_metrics(report))
        console.print(f"plot written to {plot}")
        if trace is not None:
            trace_path = plot.with_name(plot.stem + "-trace" + plot.suffix)
            plot_trace(report["trace"], handle.original_num_layers, trace_path, f"{title}, removing with {planner.name}")
            console.print(f"trace heatmap written to {trace_path}")


def _table(report: dict) -> Table:
    t = report["transition_layer"]
    caption = (f"transition l* = {t} (90% interval {report['transition_interval']}); Silent Phase "
               f"{report['silent_phase'][:1]}..{report['silent_phase'][-1:]}" if t is not None
               else "no transition: the lens never beats the best constant answer")
    table = Table(title=f"decision profile, {report['benchmark']} (n={report['n']}, {report['readout']} lens)",
                  caption=caption)
    columns = [k for k in report["layers"][0] if k not in ("layer", "original_layer")]
    table.add_column("layer", justify="right")
    for name in columns:
        table.add_column(name, justify="right")
    for row in report["layers"]:
        phase = "" if t is None else (" S" if row["layer"] < t else " D")
        table.add_row(f"{row['original_layer']}{phase}", *(_cell(row[c]) for c in columns))
    return table


def _cell(value) -> str:
    """A number to 3 decimals, a list (Option Frequency) as its entries to 2, anything else as it is."""
    if isinstance(value, (int, float)):
        return f"{value:.3f}"
    if isinstance(value, list):
        return " ".join(f"{x:.2f}" if isinstance(x, (int, float)) else str(x) for x in value)
    return str(value)
