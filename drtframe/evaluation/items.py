"""The multiple-choice item: what is scored, independent of the benchmark it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MCItem:
    """One question as (context, continuation) pairs, one pair per choice, and the gold index.

    Most tasks share one context across choices; some (winogrande's partial evaluation) vary the
    context and share the continuation. `lengths` are the characters acc_norm divides by.
    """

    benchmark: str
    index: int
    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    gold: int
    lengths: tuple[int, ...]

    @property
    def num_choices(self) -> int:
        return len(self.continuations)
