"""A non-editable install ships every subpackage and the packaged samples (pyproject lists them by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_and_sample_is_declared():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "drtframe").rglob("__init__.py")}
    assert found | {"drtframe_plugins"} == set(setuptools["packages"])
    samples = {p for pattern in setuptools["package-data"]["drtframe"] for p in (ROOT / "drtframe").glob(pattern)}
    assert samples == {p for p in (ROOT / "drtframe" / "samples").rglob("*") if p.is_file()}


def test_tests_read_nothing_outside_the_clone():
    """A stranger's clone has only itself: no test reaches above the repository (the data slices are in tests/data)."""
    readers = [p.name for p in (ROOT / "tests").glob("*.py")
               if p.name != Path(__file__).name and ("parents[2]" in p.read_text() or '"shared"' in p.read_text())]
    assert readers == []
