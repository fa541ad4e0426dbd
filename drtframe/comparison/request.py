"""What one `drtframe compare` run is asked to do, and the checks that refuse bad input before any work.

The embedded default runs offline: SmolLM2-135M, six methods, two budgets, the ARC-Easy and PIQA
validation rows 0-199 that the package ships (drtframe/samples/eval, disjoint from the guard and
decision-calibration sample, rows 470-569 of ARC-Easy validation), and LAMBADA's last-word
perplexity and accuracy on the first 100 of the packaged test rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DrtframeError
from ..models.loading import ModelSpec
from ..scoring.calibration import WIKITEXT2_SAMPLE, CalibrationSpec
from ..scoring.calibration_items import SAMPLE_DIR, ItemWindow

# The similarity and perplexity baselines, a naive order the guard should catch, the paper's
# decision_guided and the decision-aware method docs/decision.md recommends.
DEFAULT_METHODS = ("block_influence", "angular_distance", "perplexity", "reverse_order", "decision_guided", "decision")
DEFAULT_BUDGETS = (4, 8)
DEFAULT_BENCHMARKS = ("arc_easy", "piqa", "lambada_openai")
DEFAULT_LIMIT = 100
# Sized so that the default grid runs in minutes on a laptop's CPU (docs/compare.md has the measured
# time): SLEB re-scores every block after each removal, so its cost grows with K x blocks x calibration
# tokens, and a lens profile costs about 2.5 evaluations of its items. The guard keeps the prune
# guard's 100 items: on 50, variants that kept all their accuracy were flagged collapsed. Pass more
# for real studies (docs/compare.md).
DEFAULT_CALIBRATION = CalibrationSpec(WIKITEXT2_SAMPLE, 8, 32)
DEFAULT_GUARD_ITEMS = 100
SAMPLE_EVAL_DIR = SAMPLE_DIR / "eval"
SAMPLE_EVAL_ROWS = {"arc_easy": 200, "piqa": 200}  # validation rows 0..N-1 shipped in SAMPLE_EVAL_DIR
SAMPLE_SPLIT = "validation"
# Perplexity benchmarks whose test-split slice SAMPLE_EVAL_DIR ships (drtframe/samples/README.md):
# --limit counts their documents, chunks or passages, up to what the slice holds.
SAMPLE_TEXT_SPLITS = {"wikitext": "test", "wikitext2_ppl": "test", "lambada_openai": "test"}
SAMPLE = "sample"  # --data-dir value: the packaged evaluation rows
NO_HEALER = "none"  # --heal value: the pruned model as it is
Variant = tuple[int, ...]  # original indices of the removed blocks; () is the dense model
HUB = "hub"  # --data-dir value: the Hugging Face hub through `datasets`


@dataclass(frozen=True)
class CompareRequest:
    """A grid: every method at every budget (blocks removed), evaluated on every benchmark.

    `data_dir` is "sample" (the packaged rows; `split` then defaults to validation), "hub", or a
    local tree in the `--data-dir` layout. `options` maps a method (as written in `methods`) or a
    healer to its options. `guard` holds the items of the decision profile taken of every variant
    (None: no profile). `replay` lets variants resume from the dense model's recorded block inputs;
    off, every variant runs whole (the reference it is checked against). `heal` says how each pruned
    model is evaluated: "none" (as pruned) and/or healers fitted on the calibration text. `readout` is
    the lens of the guard profiles and the default `readout` option of methods that have one.
    """

    model: ModelSpec = ModelSpec("smollm2-135m")
    methods: tuple[str, ...] = DEFAULT_METHODS
    budgets: tuple[int, ...] = DEFAULT_BUDGETS
    benchmarks: tuple[str, ...] = DEFAULT_BENCHMARKS
    split: str | None = None
    format: str | None = None
    limit: int | None = DEFAULT_LIMIT
    data_dir: str = SAMPLE
    calibration: CalibrationSpec = DEFAULT_CALIBRATION
    options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    guard: ItemWindow | None = field(default_factory=lambda: ItemWindow.sample(DEFAULT_GUARD_ITEMS))
    output_dir: Path = Path("drtframe-results")
    batch_size: int = 8
    replay: bool = True
    heal: tuple[str, ...] = (NO_HEALER,)
    readout: str = "logit"

    @property
    def local_data(self) -> Path | None:
        """The directory benchmark rows are read from (None: the hub)."""
        if self.data_dir == HUB:
            return None
        return SAMPLE_EVAL_DIR if self.data_dir == SAMPLE else Path(self.data_dir).expanduser()

    @property
    def eval_split(self) -> str | None:
        """The split of the multiple-choice benchmarks (None: each one's own)."""
        return self.split or (SAMPLE_SPLIT if self.data_dir == SAMPLE else None)

    def split_for(self, benchmark: str) -> str | None:
        """The split `benchmark` is evaluated on (None: its own; the packaged perplexity slices are of test)."""
        return None if self.split is None and benchmark in SAMPLE_TEXT_SPLITS else self.eval_split

    def check(self) -> None:
        """Refuse a malformed grid with one line (the model and data are checked when loaded)."""
        if not self.methods:
            raise DrtframeError("--methods names no method")
        if len(set(self.methods)) != len(self.methods):
            raise DrtframeError("--methods names a method twice")
        if not self.benchmarks:
            raise DrtframeError("--benchmarks names no benchmark")
        if not self.budgets:
            raise DrtframeError("--remove names no budget: give increasing block counts such as 2,4,8")
        if any(k < 1 for k in self.budgets) or any(b <= a for a, b in zip(self.budgets, self.budgets[1:])):
            raise DrtframeError(f"--remove must be increasing whole numbers of at least 1, got "
                                f"{','.join(map(str, self.budgets))}")
        if self.limit is not None and self.limit < 1:
            raise DrtframeError("--limit must be at least 1")
        if self.batch_size < 1:
            raise DrtframeError("--batch-size must be at least 1")
        if not self.heal or len(set(self.heal)) != len(self.heal):
            raise DrtframeError("--heal must name 'none' and/or healers, each once")
        unused = set(self.options) - set(self.methods) - set(self.heal) - set(self.benchmarks)
        if unused:
            raise DrtframeError(f"-o names {sorted(unused)[0]!r}, which is in none of --methods "
                                f"({', '.join(self.methods)}), --heal and --benchmarks")

    def check_data(self) -> None:
        """Refuse data the packaged rows cannot give, or a --data-dir that is not a directory."""
        if self.data_dir == SAMPLE:
            missing = [b for b in self.benchmarks if b not in SAMPLE_EVAL_ROWS and b not in SAMPLE_TEXT_SPLITS]
            if missing:
                raise DrtframeError(f"drtframe ships evaluation rows of {', '.join([*SAMPLE_EVAL_ROWS, *SAMPLE_TEXT_SPLITS])} "
                                    f"only, not {missing[0]}; give --data-dir DIR (a local tree) or --data-dir hub")
            mc = [b for b in self.benchmarks if b in SAMPLE_EVAL_ROWS]
            wrong = [b for b in self.benchmarks if self.split and self.split != SAMPLE_TEXT_SPLITS.get(b, SAMPLE_SPLIT)]
            if wrong:
                raise DrtframeError(f"the packaged {wrong[0]} rows are of the "
                                    f"{SAMPLE_TEXT_SPLITS.get(wrong[0], SAMPLE_SPLIT)} split, not {self.split}")
            too_many = [b for b in mc if (self.limit or 0) > SAMPLE_EVAL_ROWS[b]]
            if too_many:
                raise DrtframeError(f"the packaged {too_many[0]} rows are {SAMPLE_EVAL_ROWS[too_many[0]]}: "
                                    f"--limit must be at most that")
        elif self.data_dir != HUB and not Path(self.data_dir).expanduser().is_dir():
            raise DrtframeError(f"--data-dir {self.data_dir} is not a directory (or give 'sample' or 'hub')")


def parse_method_options(pairs: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """('decision_guided:calib_items=50', ...) -> {'decision_guided': {'calib_items': '50'}}."""
    options: dict[str, dict[str, str]] = {}
    for pair in pairs:
        method, colon, setting = pair.partition(":")
        key, equals, value = setting.partition("=")
        if not (colon and equals and method and key):
            raise DrtframeError(f"-o expects METHOD:KEY=VALUE, such as random:seed=3, got {pair!r}")
        options.setdefault(method.strip(), {})[key.strip()] = value.strip()
    return options
