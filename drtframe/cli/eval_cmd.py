"""`drtframe eval`: lm-eval-exact multiple-choice and perplexity scores, optionally with layers removed in memory."""

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
              help="Prompt format of MC benchmarks; default: each benchmark's lm-eval format (letter for mmlu, "
                   "cloze otherwise).")
@click.option("--limit", type=int, help="Score only the first N items of each benchmark (per subject for mmlu; "
                                        "documents, chunks or passages for perplexity benchmarks).")
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
    """Score a model on multiple-choice and perplexity benchmarks.

    Multiple-choice benchmarks report acc, acc_norm and their standard errors; perplexity benchmarks
    (wikitext, wikitext2_ppl, lambada_openai) their own perplexities, lower is better."""
    from ..errors import DrtframeError
    from ..evaluation.report import table, text_table, to_json, write_json
    from ..evaluation.runner import evaluate, resolve_benchmark
    from ..evaluation.text_benchmark import TextBenchmark
    from ..evaluation.text_scores import evaluate_text
    from ..models.loading import load_model
    from ..plugin_system.manager import load_registry
    from .progress import item_progress

    if limit is not None and limit < 1:
        raise DrtframeError("--limit must be at least 1")
    registry = load_registry()
    chosen = [resolve_benchmark(registry, name.strip(), split) for name in benchmarks.split(",") if name.strip()]
    chosen = [b.configured(calibration.seq_len) if isinstance(b, TextBenchmark) else b for b in chosen]
    if fmt is not None and (text := [b.name for b in chosen if isinstance(b, TextBenchmark)]):
        raise DrtframeError(f"--format applies to multiple-choice benchmarks; {', '.join(text)} "
                            f"{'is a perplexity benchmark' if len(text) == 1 else 'are perplexity benchmarks'}")
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
    results, texts = [], []
    with item_progress() as progress:
        for benchmark in chosen:
            task = progress.add_task(benchmark.name, total=None)
            hooks = dict(progress=lambda n, t=task: progress.advance(t, n),
                         on_total=lambda n, t=task: progress.update(t, total=n))
            if isinstance(benchmark, TextBenchmark):
                result = evaluate_text(handle, benchmark, limit, data_dir, **hooks)
                texts.append((benchmark.name, benchmark.unit, result))
            else:
                results.append(evaluate(handle, benchmark, fmt, limit, data_dir, **hooks))
    title = (f"{model.source}" + (f" without layers {','.join(map(str, handle.removed))}" if removed else "")
             + (f", healed with {heal}" if heal else ""))
    if results:
        out.print(table(results, title))
    if texts:
        out.print(text_table(texts, title))
    if output:
        meta = {"model": model.source, "dtype": model.dtype, "removed_layers": list(handle.removed),
                "format": fmt, "split": split, "limit": limit, "data_dir": str(data_dir) if data_dir else None,
                "seq_len": calibration.seq_len, "healing": healing}
        payload = to_json(results, meta)
        payload["results"].update((name, result) for name, _, result in texts)
        write_json(output, payload)
        console.print(f"results written to {output}")


for _param in command.params:  # the calibration options' --seq-len sets wikitext2_ppl's chunks here too
    if _param.name == "seq_len":
        _param.help = ("Tokens per chunk: of the text wikitext2_ppl evaluates (default 2048) and of the "
                       "calibration text --heal fits on (default 256).")
