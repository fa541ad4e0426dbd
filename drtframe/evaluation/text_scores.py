"""Perplexity benchmarks through the MC evaluator: every window one row of its batched forwards.

A window is a token-level (context, continuation) pair, so it becomes a `Unit` with one choice and
is batched, laid out, run and read by the code that scores MC continuations. Which forwards run,
and in which order, depends only on the items, the tokenizer and the model's configuration
(context size, vocabulary, attention window), never on the blocks kept: a pruned variant runs the
same forwards as its dense model, so recorded block inputs can be replayed into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..models.handle import ModelHandle
from .data import load_rows
from .loglikelihood import (Unit, collected, final_layer_greedy, model_max_length, pad_token, score_batch,
                            unit_batches)
from .text_benchmark import TextBenchmark, TextItem, text_result


def text_units(items: Sequence[TextItem]) -> list[Unit]:
    """One row per window (item position, window index as the choice), longest first."""
    units = [Unit(context, [(pos, w, continuation)])
             for pos, item in enumerate(items) for w, (context, continuation) in enumerate(item.windows)]
    return sorted(units, key=lambda u: -len(u))


def text_batches(handle: ModelHandle, items: Sequence[TextItem], budget: int) -> list[list[Unit]]:
    """The batches of forwards `text_scores` runs for `items` on `handle`, in order."""
    return unit_batches(handle, text_units(items), budget)


def text_scores(handle: ModelHandle, items: Sequence[TextItem], budget: int = 2048,
                progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """Per item, a (windows, 2) float32 tensor: each window's summed log-probability of its continuation,
    and 1.0 where every continuation token is its position's greedy argmax (`final_layer_greedy`).

    The model runs only through `handle.model(...)` forwards over `text_batches(handle, items, budget)`;
    `budget` caps the padded tokens per forward (a window longer than it runs alone); `progress(n)` is
    told when n items finish. `text_result` turns the scores into the benchmark's metrics.
    """
    def scored(batch, pad_id):
        return {None: score_batch(handle, batch, pad_id, final_layer_greedy, False)}

    return collected(items, text_batches(handle, items, budget), pad_token(handle.tokenizer), progress, scored)[None]


def load_text_items(handle: ModelHandle, benchmark: TextBenchmark, limit: int | None,
                    data_dir: Path | None) -> list[TextItem]:
    """The first `limit` items (documents, chunks, passages) of `benchmark`'s rows (hub, `data_dir` or its
    data file), tokenised for `handle`'s tokenizer and context size."""
    rows = load_rows(benchmark, data_dir, benchmark.row_limit(limit))
    return benchmark.items(rows, handle.tokenizer, model_max_length(handle.model), limit)


def evaluate_text(handle: ModelHandle, benchmark: TextBenchmark, limit: int | None, data_dir: Path | None,
                  progress: Callable[[int], None] | None = None,
                  on_total: Callable[[int], None] | None = None, budget: int = 2048) -> dict[str, Any]:
    """`text_result` of `benchmark` on `handle`; `on_total(n)` is told how many items will be scored."""
    items = load_text_items(handle, benchmark, limit, data_dir)
    if on_total:
        on_total(len(items))
    return text_result(benchmark, items, text_scores(handle, items, budget, progress))
