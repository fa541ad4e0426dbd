"""The calibration options of every command that runs a scorer (score, prune), declared once."""

from __future__ import annotations

import functools

import click

from ..scoring.calibration import DEFAULT_SIZE, CalibrationSpec


def _size_help(text: str, fallback: int, default: int | None) -> str:
    """Help for a size: a fixed default shows itself; an open one says whose default applies."""
    if default is not None:
        return text
    return f"{text}  [default: the scorer's own size if it has one (perplexity's: see docs/scorers.md), else {fallback}]"


def calibration_options(func=None, *, default: CalibrationSpec = CalibrationSpec()):
    """Add --calibration, --n-samples, --seq-len and --batch-size; pass a CalibrationSpec as `calibration`.

    Use as `@calibration_options` or `@calibration_options(default=CalibrationSpec(...))`.
    """
    if func is None:
        return functools.partial(calibration_options, default=default)

    @click.option("--calibration", "source", default=default.source, show_default=True,
                  metavar="wikitext2|wikitext2-sample|FILE",
                  help="Calibration text for scorers that read data: the hub's WikiText-2 train split (as SLEB "
                       "calibrates), the first 128 KiB of its test split shipped with drtframe (no hub needed; "
                       "disjoint from the packaged perplexity slices), or a text file. "
                       "It is tokenised once and cut into consecutive chunks from its start.")
    @click.option("--n-samples", type=int, default=default.n_samples, show_default=default.n_samples is not None,
                  help=_size_help("How many chunks (the first ones) to use.", DEFAULT_SIZE[0], default.n_samples))
    @click.option("--seq-len", type=int, default=default.seq_len, show_default=default.seq_len is not None,
                  help=_size_help("Tokens per chunk.", DEFAULT_SIZE[1], default.seq_len))
    @click.option("--batch-size", type=int, default=8, show_default=True, help="Chunks per forward pass.")
    @functools.wraps(func)
    def wrapper(*args, source, n_samples, seq_len, **kwargs):
        return func(*args, calibration=CalibrationSpec(source, n_samples, seq_len), **kwargs)

    return wrapper
