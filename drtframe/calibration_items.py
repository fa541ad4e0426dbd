"""Calibration MC items taken after the evaluation window, so they never overlap what is evaluated.

The rule: of one split of a benchmark, items 0..N-1 are the evaluation window (what
`drtframe eval --limit N` scores) and items N..N+M-1 guide the pruning (decision scorers) or check
it (the prune collapse guard). Every output those items shaped records `record()`: benchmark,
split, format and the index range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import DrtframeError
from .evaluation.items import MCItem


@dataclass(frozen=True)
class ItemWindow:
    """Items `eval_items`..`eval_items + calib_items - 1` of `benchmark` (split and format optional)."""

    benchmark: str
    split: str | None = None
    data_dir: Path | None = None
    eval_items: int = 200
    calib_items: int = 50
    format: str | None = None

    def check(self) -> None:
        """Refuse bad sizes before a model is loaded."""
        if self.eval_items < 0 or self.calib_items < 2:
            raise DrtframeError("the evaluation window must be at least 0 items and the calibration items at least 2")

    def load(self, registry) -> tuple[list[MCItem], dict]:
        """The calibration items and the record of where they came from."""
        from .evaluation.runner import load_items, resolve_benchmark

        self.check()
        bench = resolve_benchmark(registry, self.benchmark, self.split)
        fmt = self.format or bench.native_format
        end = self.eval_items + self.calib_items
        items = load_items(bench, fmt, end, self.data_dir)[self.eval_items:]
        if len(items) < self.calib_items:
            raise DrtframeError(f"{bench.name} ({bench.split}) has {self.eval_items + len(items)} items, but calibration "
                                f"items {self.eval_items}..{end - 1} need {end}; lower the evaluation window or the "
                                f"calibration items")
        record = {"benchmark": bench.name, "split": bench.split, "format": fmt,
                  "first_item": self.eval_items, "last_item": end - 1, "n": self.calib_items,
                  "evaluation_window": [0, self.eval_items - 1] if self.eval_items else None}
        return items, record


def scorer_items(scorer) -> dict | None:
    """The record of the MC items a scorer was guided by; scorers that read items define `item_record()`."""
    record = getattr(scorer, "item_record", None)
    return record() if record else None
