"""The embedded default grid (`drtframe compare` with no options): its wall time and peak memory, its
tables with each cell's 95% paired interval against the dense model and the answers it flipped, and
what the intervals say about which methods differ.

    python benchmarks/default_grid.py                   # from an empty cache (a fresh temporary directory)
    python benchmarks/default_grid.py -O drtframe-results   # reuse (or fill) that directory's cache

Run it alone: another CPU-heavy process slows both.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from drtframe import CompareRequest, compare
from drtframe.comparison.tables import BEST, TIED, bench_tables, to_markdown


def verdicts(result) -> list[str]:
    """Per benchmark and K: the best method and those not separable from it at 95%."""
    lines = []
    for table in bench_tables(result):
        name = table.title.split(" ")[0]
        for column, k in enumerate(table.budgets):
            best = [label for label, entries in table.rows if BEST in entries[column].marks]
            tied = [label for label, entries in table.rows if TIED in entries[column].marks]
            worse = [label for label, entries in table.rows
                     if entries[column].text and not {BEST, TIED} & set(entries[column].marks)]
            lines.append(f"- {name}, K={k}: best {', '.join(best)}; not separable from it: "
                         f"{', '.join(tied) or 'none'}; significantly worse: {', '.join(worse) or 'none'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-O", "--output-dir", type=Path, help="results directory (default: a fresh temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drtframe-default-") as tmp:
        out = args.output_dir or Path(tmp)
        start = time.perf_counter()
        result = compare(CompareRequest(output_dir=out))
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"default grid: {seconds:.1f} s wall, peak RSS {peak:.2f} GB, {result.computed} pieces computed, "
          f"{result.from_cache} from the cache ({'fresh cache' if args.output_dir is None else out})\n")
    print(to_markdown(bench_tables(result, ("intervals", "agreement")), result.model["source"]))
    print("## What the intervals say\n")
    print("\n".join(verdicts(result)))


if __name__ == "__main__":
    main()
