"""Everything a grid writes beside its cache: results.json, results.csv, results.md and results.tex
(the tables with their intervals) and two pictures.

Each file is written to a temporary name and renamed, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .plots import plot_accuracy, plot_removal_map
from .result import CompareResult
from .store import write_atomically
from .tables import bench_tables, to_latex, to_markdown


def write_outputs(result: CompareResult, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / "results.json", (json.dumps(result.to_json(), indent=1) + "\n").encode())
    write_atomically(directory / "results.csv", result.to_csv().encode())
    heading = f"{result.model['source']}: blocks removed (K) by method"
    write_atomically(directory / "results.md", to_markdown(bench_tables(result, ("intervals", "agreement")),
                                                           heading).encode())
    write_atomically(directory / "results.tex", to_latex(bench_tables(result, ("intervals",)), heading).encode())
    for name, draw in (("accuracy_vs_removed.png", plot_accuracy), ("removal_map.png", plot_removal_map)):
        with tempfile.TemporaryDirectory(dir=directory, prefix=".plot-") as tmp:
            path = Path(tmp) / name
            draw(result, path)
            write_atomically(directory / name, path.read_bytes())
