"""Language-modelling benchmarks: text scored token by token and reported as perplexity.

A text benchmark turns its rows into `TextItem`s, one per evaluated unit (a document, a chunk of a
joined text, a LAMBADA passage), each holding token-level (context, continuation) windows. The
windows are scored exactly like MC continuations, by the same evaluator (`text_scores`), and the
benchmark turns the per-unit log-likelihoods into its metrics (`text_result`). The three protocols
are in rolling.py (lm-eval's loglikelihood_rolling), chunked.py (the layer-pruning papers' WikiText-2
perplexity) and continuation.py (lm-eval's loglikelihood).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import DrtframeError
from .benchmark import Benchmark
from .data import Row

Window = tuple[tuple[int, ...], tuple[int, ...]]  # (context ids, continuation ids), scored like an MC choice


@dataclass(frozen=True)
class TextItem:
    """One evaluated unit: its windows, and `count`, what its log-likelihood is divided by for the
    benchmark's perplexity (words, tokens predicted, or 1); `size` is its text's UTF-8 bytes where a
    byte metric needs them (else 0)."""

    benchmark: str
    index: int
    windows: tuple[Window, ...]
    count: int
    size: int = 0

    @property
    def num_choices(self) -> int:
        """The evaluator collects an item's windows as an MC item's choices."""
        return len(self.windows)


class TextBenchmark(Benchmark):
    """Base class of perplexity benchmarks; subclass RollingBenchmark, ChunkedBenchmark or ContinuationBenchmark."""

    native_format: ClassVar[str] = "perplexity"  # no prompt format: --format does not apply
    metric: ClassVar[str]  # the primary perplexity, lower is better
    unit: ClassVar[str]  # what one item is ("document", "chunk", "item"), for reports

    def item(self, doc: dict, index: int, fmt: str | None = None):
        raise DrtframeError(f"{self.name} is a perplexity benchmark: it has no multiple-choice items")

    def row_limit(self, limit: int | None) -> int | None:
        """How many rows the first `limit` items need (None: all)."""
        return limit

    def configured(self, seq_len: int | None) -> TextBenchmark:
        """This benchmark with its chunk length set to `seq_len` where it has one (None: its default)."""
        return self

    def items(self, rows: Sequence[Row], tokenizer, max_length: int, limit: int | None) -> list[TextItem]:
        """The first `limit` items of `rows`, tokenised by `tokenizer` for a model of context `max_length`."""
        raise NotImplementedError

    def metrics(self, items: Sequence[TextItem], lls: list[float], greedy: list[bool]) -> dict[str, float]:
        """Every metric, by name, from each item's log-likelihood and whether it was all greedy."""
        raise NotImplementedError

    def extra(self, items: Sequence[TextItem], lls: list[float], greedy: list[bool],
              metrics: dict[str, float]) -> dict[str, Any]:
        """Keys a benchmark adds to its result beside its `metrics` (default: none)."""
        return {}


def field(row: Row, key: str) -> str:
    """The text field `key` of `row`; a missing or non-text field is one line naming file and line."""
    value = row.doc.get(key)
    if not isinstance(value, str):
        raise DrtframeError(f"{row.where}: malformed row, " + ("missing field" if value is None else "not text in")
                            + f" {key!r}")
    return value


def weighted_perplexity(lls: Sequence[float], counts: Sequence[int]) -> float:
    """lm-eval's `weighted_perplexity`: exp of minus the summed log-likelihood over the summed counts."""
    return math.exp(-sum(lls) / sum(counts))


def text_result(benchmark: TextBenchmark, items: Sequence[TextItem], scores: Sequence[Any]) -> dict[str, Any]:
    """The result of `benchmark` from `text_scores`'s per-item (windows, 2) tensors, JSON-able:

    {"kind": "perplexity", "n": items, "metric": the primary perplexity's name ("word_perplexity",
    "token_perplexity", "perplexity"), "ppl": its value, "metrics": {every metric by name}, "units":
    [[log-likelihood, count], ...] per item, with ppl == exp(-sum(ll) / sum(count)) (count: words,
    tokens predicted, or 1)}, plus the benchmark's own keys (LAMBADA: "acc", "acc_stderr" and
    "correct", 0/1 per item; WikiText: "bytes" per document; wikitext2_ppl: "seq_len").

    An item's log-likelihood is the sum, as Python floats in window order, of its windows' float32
    sums, as lm-eval adds a document's rolling windows.
    """
    lls = [sum(float(v) for v in s[:, 0]) for s in scores]
    greedy = [bool(s[:, 1].all()) for s in scores]
    metrics = benchmark.metrics(items, lls, greedy)
    return {"kind": "perplexity", "n": len(items), "metric": benchmark.metric, "ppl": metrics[benchmark.metric],
            "metrics": metrics, "units": [[ll, item.count] for ll, item in zip(lls, items)],
            **benchmark.extra(items, lls, greedy, metrics)}
