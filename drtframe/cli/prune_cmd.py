"""`drtframe prune`: remove decoder blocks and save a model that plain transformers reloads."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .calibration_options import calibration_options
from .console import console, out
from .options import method_option_flag, model_options, parse_int_list, readout_option


@click.command("prune")
@model_options
@click.option("--method", help="Method name, 'scorer' or 'scorer@schedule' (see 'drtframe plugins').")
@click.option("--remove", "-k", type=int, help="How many blocks the method removes.")
@click.option("--layers", help="Remove exactly these blocks instead: comma-separated 0-based indices.")
@method_option_flag
@calibration_options
@click.option("--output", "-O", type=click.Path(path_type=Path), required=True, help="Directory to write.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output directory.")
@click.option("--no-speed", is_flag=True, help="Skip the timed generation before and after.")
@click.option("--guard/--no-guard", default=True, show_default=True,
              help="Collapse guard: probe the dense and pruned model through the logit lens on MC items and refuse "
                   "(exit 3, nothing written) when the pruned model loses the decision transition.")
@click.option("--guard-benchmark", metavar="BENCHMARK",
              help="Guard items from this benchmark (name or YAML) instead of the packaged ARC-Easy sample "
                   "(validation rows 470-569).")
@click.option("--guard-split", help="Split of --guard-benchmark (default: the benchmark's own).")
@click.option("--guard-data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Local data tree for --guard-benchmark.")
@click.option("--guard-eval-items", type=int, default=200, show_default=True,
              help="Size N of the evaluation window the --guard-benchmark items must not overlap: they start at item N.")
@click.option("--guard-items", type=int, default=100, show_default=True,
              help="How many guard items (fewer make the verdict noisier: see docs/decision.md).")
@readout_option
@click.option("--force", is_flag=True, help="Write the pruned model even when the guard finds a collapse.")
@click.option("--heal", metavar="HEALER", help="Heal the pruned model without training, fitted on the calibration "
                                                "text (e.g. linear_ls; see 'drtframe plugins --kind healer').")
@click.option("--heal-option", "heal_options", multiple=True, metavar="KEY=VALUE",
              help="A healer option, e.g. --heal-option ridge=1e-3 (repeatable).")
def command(model, method, remove, layers, options, calibration, batch_size, output, overwrite, no_speed, guard,
            guard_benchmark, guard_split, guard_data_dir, guard_eval_items, guard_items, readout, force, heal,
            heal_options) -> None:
    """Remove K blocks chosen by a method (or the blocks given) and save the pruned model.

    For deployment, drtframe recommends --method decision (the Decision Margin without each block, on
    MC items of your task: -o benchmark=...): on SmolLM2-135M and Gemma-3-270M it kept the most
    accuracy on average at 40% of the blocks removed (planning 8 removals on 100 items took 9
    minutes for SmolLM2 on 2 CPU cores). --method perplexity@guarded plans faster and came close.
    docs/decision.md has the evidence.
    """
    from ..plugin_system.manager import load_registry
    from ..plugin_system.options import parse_option_pairs
    from ..pruning.runner import PruneRequest, run_prune
    from ..scoring.calibration_items import ItemWindow

    given = {name for name in ("guard_benchmark", "guard_split", "guard_data_dir", "guard_eval_items", "guard_items",
                               "force") if click.get_current_context().get_parameter_source(name).name != "DEFAULT"}
    if not guard and given:
        raise click.UsageError(f"{', '.join(_flag(n) for n in sorted(given))} cannot be used with --no-guard")
    if not guard_benchmark and given & {"guard_split", "guard_data_dir", "guard_eval_items"}:
        raise click.UsageError("--guard-split, --guard-data-dir and --guard-eval-items need --guard-benchmark")
    window = None
    if guard:
        window = (ItemWindow(guard_benchmark, guard_split, guard_data_dir, guard_eval_items, guard_items)
                  if guard_benchmark else ItemWindow.sample(guard_items))
    request = PruneRequest(model, output, method, remove, parse_int_list(layers), parse_option_pairs(options),
                           overwrite, measure_speed=not no_speed, calibration=calibration, batch_size=batch_size,
                           guard=window, force=force, heal=heal, heal_options=parse_option_pairs(heal_options),
                           readout=readout)
    with console.status("starting") as spinner:
        result = run_prune(request, load_registry(), status=lambda msg: spinner.update(msg))
    _report(result)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _report(result) -> None:
    table = Table(title=f"pruned with {result.plan.method}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("removed layers", ", ".join(map(str, result.plan.removed)))
    table.add_row("layers", f"{result.num_layers_before} -> {result.num_layers_after}")
    share = 1 - result.params_after / result.params_before
    table.add_row("parameters", f"{result.params_before:,} -> {result.params_after:,} (-{share:.1%})")
    if result.speedup is not None:
        table.add_row("generation", f"{result.tokens_per_s_before:.1f} -> {result.tokens_per_s_after:.1f} tokens/s")
        table.add_row("speed-up", f"{result.speedup:.2f}x measured, {result.ideal_speedup:.2f}x ideal (L/(L-K))")
    if result.plan.record and result.plan.record.get("summary"):
        table.add_row("schedule", result.plan.record["summary"])
    if result.guard is not None:
        g = result.guard
        items = f"{g['items']['benchmark']} {g['items']['split']} items {g['items']['first_item']}-{g['items']['last_item']}"
        if not g["checked"]:
            state = f"not checked: the dense model shows no decision transition on {items}"
        else:
            state = (f"{'lost, written anyway (--force)' if g['forced'] else 'kept'}: l* "
                     f"{g['dense']['transition_original_layer']} -> {g['pruned']['transition_original_layer']}, "
                     f"accuracy {g['dense_acc']:.2f} -> {g['pruned_acc']:.2f} on {items}")
        table.add_row("decision transition", state)
    if result.healing is not None:
        runs = "; ".join(f"blocks {r['run'][0]}-{r['run'][1]} folded into {r['folded_into']}, "
                         f"{r['error_removed']:.0%} of the squared error removed" if r.get("folded_into") is not None
                         else f"blocks {r['run'][0]}-{r['run'][1]}: {r['note']}" for r in result.healing.get("runs", []))
        table.add_row("healing", f"{result.healing['healer']}: {runs}" if runs else result.healing["healer"])
    table.add_row("written to", str(result.output))
    out.print(table)
