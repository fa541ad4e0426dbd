"""`drtframe compare`: several pruning methods x budgets x benchmarks in one resumable run."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..comparison.request import (DEFAULT_BENCHMARKS, DEFAULT_BUDGETS, DEFAULT_CALIBRATION, DEFAULT_GUARD_ITEMS,
                                  DEFAULT_LIMIT, DEFAULT_METHODS, NO_HEALER, SAMPLE)
from ..comparison.tables import DETAILS
from ..execution.executor import EXECUTORS
from .calibration_options import calibration_options
from .console import console, out
from .options import model_options, parse_int_list, readout_option


@click.command("compare")
@model_options(default="smollm2-135m")
@click.option("--methods", default=",".join(DEFAULT_METHODS), show_default=True,
              help="Comma-separated methods, 'scorer' or 'scorer@schedule' (see 'drtframe plugins').")
@click.option("--remove", "-k", "budgets", default=",".join(map(str, DEFAULT_BUDGETS)), show_default=True,
              help="Increasing numbers of blocks to remove, comma-separated.")
@click.option("--benchmarks", "-b", default=",".join(DEFAULT_BENCHMARKS), show_default=True,
              help="Comma-separated benchmark names or YAML task files.")
@click.option("--split", help="Split to evaluate (default: validation for the packaged rows, else the benchmark's own).")
@click.option("--format", "fmt", type=click.Choice(["cloze", "letter"]), help="Prompt format (default: each benchmark's own).")
@click.option("--limit", default=str(DEFAULT_LIMIT), show_default=True, metavar="N|all",
              help="Evaluate the first N items of each benchmark (per subject for mmlu), or all of them.")
@click.option("--data-dir", default=SAMPLE, show_default=True, metavar="sample|hub|DIR",
              help="Benchmark rows: 'sample' (shipped with drtframe: ARC-Easy and PIQA validation rows 0-199, and "
                   "test-split slices of wikitext, wikitext2_ppl and lambada_openai), "
                   "'hub' (through datasets), or a local tree <DIR>/<hub path>/<config or default>/<split>.jsonl.")
@calibration_options(default=DEFAULT_CALIBRATION)
@click.option("--option", "-o", "options", multiple=True, metavar="METHOD:KEY=VALUE",
              help="A method's, healer's or benchmark's option, e.g. -o random:seed=3 or "
                   "-o wikitext2_ppl:seq_len=1024 (repeatable).")
@click.option("--heal", default=NO_HEALER, show_default=True, metavar="none,HEALER,...",
              help="Evaluate each pruned model as it is ('none') and/or healed (e.g. none,linear_ls), side by side.")
@click.option("--guard/--no-guard", default=True, show_default=True,
              help="Take every variant's decision profile on the guard items (the packaged ARC-Easy sample, "
                   "validation rows 470-569) and flag variants that lost the decision transition as collapsed.")
@click.option("--guard-items", type=int, default=DEFAULT_GUARD_ITEMS, show_default=True,
              help="How many guard items (2-100; fewer make the verdict noisier).")
@readout_option
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="Where the work runs: this process, or a Ray cluster (pip install \"drtframe[ray]\").")
@click.option("--ray-address", metavar="ADDR", help="Join this Ray cluster ('auto': the one running here); "
              "default: RAY_ADDRESS if set, else start a local cluster sized to this machine.")
@click.option("--workers", type=int, help="Ray workers, each loading the model once (default: as many as fit).")
@click.option("--cpus-per-worker", type=float, help="CPUs Ray gives each worker (default 1); torch uses that many threads.")
@click.option("--gpus-per-worker", type=float, help="GPUs Ray gives each worker (default 0).")
@click.option("--show", default="", metavar="intervals,agreement",
              help="Under each cell: 'intervals' (the difference to the dense model, its 95% paired interval and "
                   "McNemar p) and/or 'agreement' (answers flipped from the dense model's, KL divergence).")
@click.option("--output-dir", "-O", type=click.Path(path_type=Path, file_okay=False), default=Path("drtframe-results"),
              show_default=True, help="Results, plots and the cache that makes reruns and resumes instant.")
def command(model, methods, budgets, benchmarks, split, fmt, limit, data_dir, calibration, batch_size, options, heal,
            guard, guard_items, readout, executor, ray_address, workers, cpus_per_worker, gpus_per_worker, show, output_dir) -> None:
    """Compare pruning methods side by side: every method at every budget on every benchmark."""
    from ..comparison.request import CompareRequest, parse_method_options
    from ..comparison.runner import compare
    from ..execution import make_executor
    from ..scoring.calibration_items import ItemWindow
    from .compare_report import grid_progress, render

    show = _names(show)
    if set(show) - set(DETAILS):
        raise click.BadParameter(f"choose from {', '.join(DETAILS)}, got {show}", param_hint="--show")
    if not guard and click.get_current_context().get_parameter_source("guard_items").name != "DEFAULT":
        raise click.UsageError("--guard-items cannot be used with --no-guard")
    request = CompareRequest(
        model=model, methods=_names(methods), budgets=parse_int_list(budgets, "--remove", "block counts", "2,4,8"), benchmarks=_names(benchmarks),
        split=split, format=fmt, limit=_limit(limit), data_dir=data_dir, calibration=calibration,
        options=parse_method_options(options), guard=ItemWindow.sample(guard_items) if guard else None,
        readout=readout,
        output_dir=output_dir, batch_size=batch_size, heal=_names(heal))
    runner = make_executor(executor, address=ray_address, workers=workers, cpus_per_worker=cpus_per_worker,
                           gpus_per_worker=gpus_per_worker)
    start = time.perf_counter()
    with grid_progress() as (progress, report):
        try:
            result = compare(request, progress=report, executor=runner)
        except KeyboardInterrupt:
            progress.stop()
            console.print(f"[yellow]Interrupted; finished cells are kept in {output_dir / 'cache'}: "
                          f"the same command resumes from them.[/]")
            raise SystemExit(130) from None
    render(result, out, show)
    console.print(f"{result.computed} pieces of work computed, {result.from_cache} read from the cache, "
                  f"{time.perf_counter() - start:.0f} s; results, CSV and plots in {output_dir}")


def _limit(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"expected a number or 'all', got {text!r}", param_hint="--limit") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())
