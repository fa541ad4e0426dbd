"""lm-eval's `loglikelihood_rolling`: whole documents scored in disjoint windows of the model's context.

A document's tokens (no special tokens) are predicted window by window: the first window predicts
its first max_length tokens after the prefix token (BOS, else EOS, HFLM's `prefix_token_id`); each
later one predicts the next max_length tokens (fewer at the end), conditioned on the token before
them, and the last window on as many earlier tokens as fill the context. Every token is predicted
once. Metrics are weighted over documents: word and byte perplexity and bits per byte, counted on
the text `counted_text` gives.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import ClassVar

from ..errors import DrtframeError
from .data import Row
from .text_benchmark import TextBenchmark, TextItem, Window, weighted_perplexity


def rolling_windows(tokens: Sequence[int], prefix: int, max_length: int) -> list[Window]:
    """The disjoint (context, continuation) windows lm-eval 0.4.13 scores `tokens` in; each context and
    continuation together hold at most max_length + 1 tokens (the last is predicted, never input)."""
    tokens = tuple(tokens)
    windows: list[Window] = []
    done = 0
    while done < len(tokens):
        end = min(done + max_length, len(tokens))
        windows.append(((prefix,) if done == 0 else tokens[end - max_length - 1:done], tokens[done:end]))
        done = end
    return windows


def prefix_token(tokenizer) -> int:
    """HFLM's `prefix_token_id`: what a document's first token is predicted from."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


class RollingBenchmark(TextBenchmark):
    """Base of lm-eval `loglikelihood_rolling` tasks: each row a document, scored whole."""

    metric: ClassVar[str] = "word_perplexity"
    unit: ClassVar[str] = "document"

    def doc_to_target(self, doc: dict) -> str:
        """The text scored (lm-eval's doc_to_target)."""
        raise NotImplementedError

    def counted_text(self, doc: dict) -> str:
        """The text words and bytes are counted on (lm-eval's default: the scored text)."""
        return self.doc_to_target(doc)

    def items(self, rows: Sequence[Row], tokenizer, max_length: int, limit: int | None) -> list[TextItem]:
        items = []
        for index, row in enumerate(rows[:limit]):
            try:
                text, counted = self.doc_to_target(row.doc), self.counted_text(row.doc)
            except KeyError as exc:
                raise DrtframeError(f"{row.where}: malformed row, missing field {exc.args[0]!r}") from None
            except (TypeError, AttributeError) as exc:
                raise DrtframeError(f"{row.where}: malformed row ({exc})") from None
            tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
            if not tokens:
                raise DrtframeError(f"{row.where}: the document is empty")
            items.append(TextItem(self.name, index, tuple(rolling_windows(tokens, prefix_token(tokenizer), max_length)),
                                  len(re.split(r"\s+", counted)), len(counted.encode("utf-8"))))
        return items

    def metrics(self, items, lls, greedy):
        size = [item.size for item in items]
        return {"word_perplexity": weighted_perplexity(lls, [item.count for item in items]),
                "byte_perplexity": weighted_perplexity(lls, size),
                "bits_per_byte": -sum(lls) / sum(size) / math.log(2)}

    def extra(self, items, lls, greedy, metrics):
        return {"bytes": [item.size for item in items]}
