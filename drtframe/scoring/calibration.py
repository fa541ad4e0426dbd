"""Calibration tokens for the scorers that look at data, cut by one documented rule.

The rule: the text is tokenised once, without special tokens, and cut into consecutive,
non-overlapping chunks of `seq_len` tokens from its start; the first `n_samples` chunks are the
calibration set (a clear error when the text is too short). What the user leaves open comes from the
scorer (`Scorer.calibration_size`: SLEB's re-scoring is costly per token), else 64 x 256. Sources are `wikitext2` (the
train split of the hub's `wikitext-2-raw-v1`, its non-blank rows joined, as SLEB calibrates: the
test split is what the wikitext2_ppl benchmark evaluates), `wikitext2-sample` (the first 128 KiB of
the test split's text, shipped in drtframe/samples, CC BY-SA 3.0, for machines without the hub; the
packaged perplexity slices are cut from later test text) or the path of any text file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DrtframeError
from ..evaluation.chunked import joined_text

if TYPE_CHECKING:
    import torch

WIKITEXT2 = "wikitext2"
WIKITEXT2_SAMPLE = "wikitext2-sample"
SAMPLE_TEXT = Path(__file__).parents[1] / "samples" / "wikitext-2-raw-test-head.txt"
HUB_DATASET = ("Salesforce/wikitext", "wikitext-2-raw-v1")
DEFAULT_SIZE = (64, 256)  # samples x tokens, where neither the user nor the scorer says


@dataclass(frozen=True)
class CalibrationSpec:
    """Where the calibration text comes from and how much of it is used (None: not said, see `sized`)."""

    source: str = WIKITEXT2
    n_samples: int | None = None
    seq_len: int | None = None

    def sized(self, size: tuple[int, int] | None = None) -> CalibrationSpec:
        """This spec with the sizes it leaves open taken from `size` (a scorer's), else DEFAULT_SIZE."""
        n_samples, seq_len = size or DEFAULT_SIZE
        return replace(self, n_samples=n_samples if self.n_samples is None else self.n_samples,
                       seq_len=seq_len if self.seq_len is None else self.seq_len)

    def check(self) -> None:
        """Refuse what is wrong before a model is loaded: bad sizes, a missing file."""
        if (self.n_samples is not None and self.n_samples < 1) or (self.seq_len is not None and self.seq_len < 2):
            raise DrtframeError("--n-samples must be at least 1 and --seq-len at least 2")
        if self.source not in (WIKITEXT2, WIKITEXT2_SAMPLE) and not Path(self.source).expanduser().is_file():
            raise DrtframeError(f"calibration text not found: {self.source} (give '{WIKITEXT2}', "
                                f"'{WIKITEXT2_SAMPLE}' or a text file)")

    def as_dict(self) -> dict:
        """What a record keeps: the sizes used (a spec not yet `sized` gets the defaults)."""
        spec = self.sized()
        return {"source": spec.source, "n_samples": spec.n_samples, "seq_len": spec.seq_len}


def load_text(source: str) -> str:
    """The whole calibration text of `source`."""
    if source != WIKITEXT2:
        return (SAMPLE_TEXT if source == WIKITEXT2_SAMPLE else Path(source).expanduser()).read_text(encoding="utf-8")
    import datasets

    try:
        rows = datasets.load_dataset(*HUB_DATASET, split="train")["text"]
    except Exception as exc:  # the hub fails in many ways (offline, moved, rate-limited)
        reason = " ".join(str(exc).split())[:200]
        raise DrtframeError(f"could not load {'/'.join(HUB_DATASET)} from the hub ({reason}); "
                            f"give a text file with --calibration FILE") from None
    return joined_text(rows)


def chunk_tokens(tokenizer, text: str, n_samples: int, seq_len: int) -> torch.Tensor:
    """The first `n_samples` consecutive chunks of `seq_len` tokens of `text`, as (n_samples, seq_len)."""
    import torch

    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    needed = n_samples * seq_len
    if len(ids) < needed:
        raise DrtframeError(f"the calibration text has {len(ids)} tokens, but {n_samples} samples of "
                            f"{seq_len} need {needed}; lower --n-samples or --seq-len")
    return torch.tensor(ids[:needed], dtype=torch.long).view(n_samples, seq_len)


def calibration_tokens(spec: CalibrationSpec, tokenizer) -> torch.Tensor:
    """The calibration set `spec` describes, tokenised with `tokenizer` (sizes it leaves open: the defaults)."""
    spec = spec.sized()
    spec.check()
    return chunk_tokens(tokenizer, load_text(spec.source), spec.n_samples, spec.seq_len)
