"""`drtframe eval`: lm-eval-exact multiple-choice scores, optionally with layers removed in memory."""

from __future__ import annotations

from pathlib import Path

import click

from .calibration_options import calibration_options
from .console import console, out
from .options import model_options, output_file, parse_int_list


@click.command("eval")
@model_options
@click.option("--benchmark", "-b", "benchmarks", required=True,
              help="Comma-separated benchmark names (see 'drtframe plugins') or YAML task files.")
@click.option("--format", "fmt", type=click.Choice(["cloze", "letter"]),
              help="Prompt format; default: each benchmark's lm-eval format (letter for mmlu, cloze otherwise).")
@click.option("--limit", type=int, help="Score only the first N items of each benchmark (per subject for mmlu).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Read <dir>/<hub dataset path>/<config or default>/<split>.jsonl instead of the hub.")
@click.option("--split", help="Evaluate this split instead of the one lm-eval uses (e.g. validation).")
@click.option("--remove-layers", help="Evaluate with these blocks removed (comma-separated 0-based indices).")
@click.option("--heal", metavar="HEALER", help="Heal the model without --remove-layers first (e.g. linear_ls), "
                                                "fitted on the calibration text.")
@click.option("--heal-option", "heal_options", multiple=True, metavar="KEY=VALUE", help="A healer option (repeatable).")
@calibration_options
@output_file("--output", "-O", help="Write results as JSON.")
def command(model, benchmarks, fmt, limit, data_dir, split, remove_layers, heal, heal_options, calibration, batch_size,
            output) -> None:
    """Score a model on multiple-choice benchmarks (acc, acc_norm, standard errors)."""
    from ..errors import DrtframeError
    from ..evaluation.report import table, to_json, write_json
    from ..evaluation.runner import evaluate, resolve_benchmark
    from ..models.loading import load_model
    from ..plugin_system.manager import load_registry
    from .progress import item_progress

    if limit is not None and limit < 1:
        raise DrtframeError("--limit must be at least 1")
    registry = load_registry()
    chosen = [resolve_benchmark(registry, name.strip(), split) for name in benchmarks.split(",") if name.strip()]
    removed = parse_int_list(remove_layers) or ()
    healer = None
    if heal:
        from ..healing.apply import resolve_healer
        from ..plugin_system.options import parse_option_pairs

        healer = resolve_healer(registry, heal, parse_option_pairs(heal_options))
        if not removed:
            raise DrtframeError(f"--heal {heal} heals a model with blocks removed: give --remove-layers")
        calibration.check()
    healing = None
    with console.status(f"loading {model.source}") as spinner:
        handle = load_model(model, registry)
        if healer is not None:
            from ..healing.apply import heal as fit_and_fold

            healing = fit_and_fold(handle, removed, healer, calibration, batch_size, lambda m: spinner.update(m))
    if removed:
        handle = handle.without(removed)
    results = []
    with item_progress() as progress:
        for benchmark in chosen:
            task = progress.add_task(benchmark.name, total=None)
            results.append(evaluate(handle, benchmark, fmt, limit, data_dir,
                                    progress=lambda n, t=task: progress.advance(t, n),
                                    on_total=lambda n, t=task: progress.update(t, total=n)))
    title = (f"{model.source}" + (f" without layers {','.join(map(str, handle.removed))}" if removed else "")
             + (f", healed with {heal}" if heal else ""))
    out.print(table(results, title))
    if output:
        meta = {"model": model.source, "dtype": model.dtype, "removed_layers": list(handle.removed),
                "format": fmt, "split": split, "limit": limit, "data_dir": str(data_dir) if data_dir else None,
                "healing": healing}
        write_json(output, to_json(results, meta))
        console.print(f"results written to {output}")
