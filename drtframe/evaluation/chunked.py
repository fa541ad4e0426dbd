"""The layer-pruning papers' perplexity (SLEB, SparseGPT): one joined text cut into equal chunks.

The rows' text is joined (`joined_text`, the rule calibration text follows too), tokenised once
without special tokens and cut into consecutive, non-overlapping chunks of `seq_len` tokens from its
start; a final partial chunk is dropped, as the papers drop it. Each chunk predicts its tokens 2 to
seq_len from the ones before (what `model(input_ids=chunk, labels=chunk).loss` averages), and the
token perplexity is exp(-sum log p / tokens predicted) over all chunks.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import ClassVar

from pydantic import Field

from ..errors import DrtframeError
from ..plugin_system.options import Options, build_options
from .data import Row
from .text_benchmark import TextBenchmark, TextItem, field, weighted_perplexity

DEFAULT_SEQ_LEN = 2048


def joined_text(rows: Iterable[str]) -> str:
    """WikiText's rows as one text: the non-blank rows joined with "" (each keeps its own newline)."""
    return "".join(row for row in rows if row.strip())


class ChunkOptions(Options):
    seq_len: int = Field(DEFAULT_SEQ_LEN, ge=2, description="Tokens per chunk (drtframe eval --seq-len).")


class ChunkedBenchmark(TextBenchmark):
    """Base of perplexities over one joined text cut into chunks of `seq_len` tokens."""

    metric: ClassVar[str] = "token_perplexity"
    unit: ClassVar[str] = "chunk"
    text_field: ClassVar[str] = "text"
    Options = ChunkOptions

    def row_limit(self, limit):
        return None  # chunks are cut from the whole text

    def configured(self, seq_len):
        if seq_len is None:
            return self
        chunked = copy.copy(self)  # keeps a --split override
        chunked.options = build_options(self.Options, {"seq_len": seq_len}, self.name)
        return chunked

    def items(self, rows: Sequence[Row], tokenizer, max_length: int, limit: int | None) -> list[TextItem]:
        seq_len = self.options.seq_len
        if seq_len > max_length:
            raise DrtframeError(f"--seq-len {seq_len} exceeds the model's context of {max_length} tokens")
        ids = tokenizer(joined_text(field(row, self.text_field) for row in rows), add_special_tokens=False,
                        verbose=False)["input_ids"]
        if len(ids) < seq_len:
            raise DrtframeError(f"{self.name}: the text has {len(ids)} tokens, fewer than one chunk of {seq_len}; "
                                f"lower --seq-len")
        count = len(ids) // seq_len if limit is None else min(limit, len(ids) // seq_len)
        chunks = [tuple(ids[i * seq_len:(i + 1) * seq_len]) for i in range(count)]
        return [TextItem(self.name, i, ((chunk[:1], chunk[1:]),), seq_len - 1) for i, chunk in enumerate(chunks)]

    def metrics(self, items, lls, greedy):
        return {"token_perplexity": weighted_perplexity(lls, [item.count for item in items])}

    def extra(self, items, lls, greedy, metrics):
        return {"seq_len": self.options.seq_len}
