"""Install throwaway plugin distributions into a temp dir on sys.path, as pip would lay them out."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path


def make_dist(root: Path, name: str, modules: dict[str, str], entry_points: dict[str, str], version: str = "1.0") -> None:
    """Write `modules` and a `<name>-<version>.dist-info` declaring `entry_points` in group drtframe."""
    for module, code in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{ep} = {target}" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[drtframe]\n{lines}\n")
    importlib.invalidate_caches()


def forget_modules(names) -> None:
    for name in names:
        sys.modules.pop(name, None)
