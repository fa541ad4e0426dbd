"""Benchmark rows from the hub (through `datasets`) or from a local tree of JSONL files.

The local layout mirrors the hub: `<data_dir>/<dataset path>/<config or "default">/<split>.jsonl`,
one row per line exactly as `datasets.load_dataset` returns it. Every row remembers where it came
from, so a malformed one is reported with its file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DrtframeError
from .benchmark import Benchmark


@dataclass(frozen=True)
class Row:
    doc: dict
    where: str  # "file:line" or "hub dataset, row i"


def local_path(benchmark: Benchmark, data_dir: Path) -> Path:
    return data_dir / benchmark.dataset_path / (benchmark.dataset_name or "default") / f"{benchmark.split}.jsonl"


def read_local(path: Path, limit: int | None) -> list[Row]:
    if not path.is_file():
        others = sorted(p.stem for p in path.parent.glob("*.jsonl")) if path.parent.is_dir() else []
        hint = f"; that directory has split(s) {', '.join(others)}: choose one with --split" if others else ""
        raise DrtframeError(f"benchmark data not found: expected {path}{hint}")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DrtframeError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(doc, dict):
                raise DrtframeError(f"{path}:{number}: a row must be a JSON object")
            rows.append(Row(doc, f"{path}:{number}"))
    return rows


def read_hub(benchmark: Benchmark, limit: int | None) -> list[Row]:
    import datasets

    split = benchmark.split if limit is None else f"{benchmark.split}[:{limit}]"
    try:
        table = datasets.load_dataset(benchmark.dataset_path, benchmark.dataset_name, split=split)
    except Exception as exc:  # network, auth and missing-dataset errors all end here
        raise DrtframeError(f"could not load {benchmark.dataset_path} ({benchmark.dataset_name or 'default'}, "
                            f"{benchmark.split}) from the hub: {' '.join(str(exc).split())[:300]} "
                            f"(use --data-dir for local files)") from None
    where = f"{benchmark.dataset_path}/{benchmark.dataset_name or 'default'}/{benchmark.split}"
    return [Row(dict(doc), f"{where}, row {i}") for i, doc in enumerate(table)]


def load_rows(benchmark: Benchmark, data_dir: Path | None, limit: int | None) -> list[Row]:
    """The first `limit` rows (all when None) of the benchmark's split, in order."""
    if benchmark.data_file is not None:
        return read_local(benchmark.data_file, limit)
    if data_dir is not None:
        return read_local(local_path(benchmark, data_dir), limit)
    return read_hub(benchmark, limit)
