"""lm-eval's `loglikelihood` tasks: one continuation per row, scored after its context.

The context and continuation are lm-eval's doc_to_text and doc_to_target (Jinja2 templates),
encoded and truncated as for MC items. Metrics: perplexity = exp(-mean log-likelihood), and acc, the
share of continuations whose every token is the greedy argmax, with lm-eval's standard error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import jinja2

from ..errors import DrtframeError
from .data import Row
from .metrics import mean_stderr
from .templates import render
from .text_benchmark import TextBenchmark, TextItem
from .tokenize import encode_pair, truncate


class ContinuationBenchmark(TextBenchmark):
    """Base of lm-eval `loglikelihood` tasks given as a context and a target template."""

    metric: ClassVar[str] = "perplexity"
    unit: ClassVar[str] = "item"
    text_template: ClassVar[str]
    target_template: ClassVar[str]

    def items(self, rows: Sequence[Row], tokenizer, max_length: int, limit: int | None) -> list[TextItem]:
        items = []
        for index, row in enumerate(rows[:limit]):
            try:
                context, continuation = render(self.text_template, row.doc), render(self.target_template, row.doc)
            except KeyError as exc:
                raise DrtframeError(f"{row.where}: malformed row, missing field {exc.args[0]!r}") from None
            except (jinja2.TemplateError, TypeError, AttributeError) as exc:
                raise DrtframeError(f"{row.where}: malformed row ({exc})") from None
            pair = truncate(encode_pair(tokenizer, context, continuation), max_length)
            items.append(TextItem(self.name, index, ((pair.context, pair.continuation),), 1))
        return items

    def metrics(self, items, lls, greedy):
        correct = [float(g) for g in greedy]
        return {"perplexity": math.exp(-sum(lls) / len(lls)), "acc": sum(correct) / len(correct),
                "acc_stderr": mean_stderr(correct)}

    def extra(self, items, lls, greedy, metrics):
        return {"acc": metrics["acc"], "acc_stderr": metrics["acc_stderr"], "correct": [int(g) for g in greedy]}
