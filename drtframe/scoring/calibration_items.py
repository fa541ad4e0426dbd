"""Calibration MC items taken after the evaluation window, so they never overlap what is evaluated.

The rule: of one split of a benchmark, items 0..N-1 are the evaluation window (what
`drtframe eval --limit N` scores) and items N..N+M-1 guide the pruning (decision scorers) or check
it (the prune collapse guard). Every output those items shaped records `record()`: benchmark,
split, format and the index range.

Without a benchmark the default is `ItemWindow.sample()`: 100 ARC-Easy validation rows (470-569)
shipped in the package (drtframe/samples, CC BY-SA 4.0), so the guard and decision pruning work
without the hub. `offset` says where the file's first row sits in the real split, so records and
messages give the real row numbers; its record's `evaluation_window` is [0, 469], the largest
window of that split the sample stays clear of.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DrtframeError
from ..evaluation.items import MCItem
from ..plugin_system.options import Options

SAMPLE_DIR = Path(__file__).parents[1] / "samples"
SAMPLE_OFFSET = 470
SAMPLE_SIZE = 100


@dataclass(frozen=True)
class ItemWindow:
    """Items `eval_items`..`eval_items + calib_items - 1` of `benchmark` (split and format optional).

    `offset` is the real split's row number of the data file's first row (0 unless the file is an
    excerpt, like the packaged sample); `source` notes where the file comes from, in the record.
    """

    benchmark: str
    split: str | None = None
    data_dir: Path | None = None
    eval_items: int = 200
    calib_items: int = 100
    format: str | None = None
    offset: int = 0
    source: str | None = None

    @classmethod
    def sample(cls, items: int = SAMPLE_SIZE) -> ItemWindow:
        """The first `items` of the packaged ARC-Easy sample (see drtframe/samples/README.md)."""
        if not 2 <= items <= SAMPLE_SIZE:
            raise DrtframeError(f"the packaged sample has {SAMPLE_SIZE} items, so it cannot give {items} "
                                f"(calib_items / --guard-items must be 2 to {SAMPLE_SIZE}); or name a benchmark")
        return cls("arc_easy", "validation", SAMPLE_DIR, 0, items, offset=SAMPLE_OFFSET, source="drtframe sample")

    def check(self) -> None:
        """Refuse bad sizes before a model is loaded."""
        if self.eval_items < 0 or self.calib_items < 2:
            raise DrtframeError("the evaluation window must be at least 0 items and the calibration items at least 2")

    def load(self, registry) -> tuple[list[MCItem], dict]:
        """The calibration items and the record of where they came from."""
        from ..evaluation.runner import load_items, resolve_benchmark

        self.check()
        bench = resolve_benchmark(registry, self.benchmark, self.split)
        fmt = self.format or bench.native_format
        end = self.eval_items + self.calib_items
        items = load_items(bench, fmt, end, self.data_dir)[self.eval_items:]
        if len(items) < self.calib_items:
            raise DrtframeError(f"{bench.name} ({bench.split}) has {self.eval_items + len(items)} items, but calibration "
                                f"items {self.eval_items}..{end - 1} need {end}; lower the evaluation window or the "
                                f"calibration items")
        first = self.offset + self.eval_items
        record = {"benchmark": bench.name, "split": bench.split, "format": fmt,
                  "first_item": first, "last_item": first + self.calib_items - 1, "n": self.calib_items,
                  "evaluation_window": [0, first - 1] if first else None}
        if self.source:
            record["source"] = self.source
        return items, record


class ItemOptions(Options):
    """The options that name a method's MC items (decision scorers, the guarded schedule), checked by `window()`."""

    benchmark: str | None = None  # None: the packaged ARC-Easy sample
    split: str | None = None
    data_dir: str | None = None
    eval_items: int = 200
    calib_items: int = 100
    format: str | None = None

    def window(self, owner: str) -> ItemWindow:
        """The items these options name; bad combinations fail here, before a model is loaded."""
        if self.benchmark is None:
            if self.split or self.data_dir or "eval_items" in self.model_fields_set:
                raise DrtframeError(f"{owner}: split, data_dir and eval_items need a benchmark option "
                                    f"(-o benchmark=NAME)")
            window = replace(ItemWindow.sample(self.calib_items), format=self.format)
        else:
            window = ItemWindow(self.benchmark, self.split, Path(self.data_dir) if self.data_dir else None,
                                self.eval_items, self.calib_items, self.format)
        window.check()
        return window


def scorer_items(scorer) -> dict | None:
    """The record of the MC items a scorer was guided by; scorers that read items define `item_record()`."""
    record = getattr(scorer, "item_record", None)
    return record() if record else None
