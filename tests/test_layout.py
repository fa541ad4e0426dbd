"""The subpackages are layers: each imports only from those listed above it in README's "Where the
code is" table, so the table is also the order to read the code in."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "drtframe"


def layers() -> list[str]:
    """The subpackages in the order README's table lists them."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Where the code is", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `drtframe/(\w+)/` \|", table, flags=re.M)


def imported_subpackages(path: Path) -> set[str]:
    """The drtframe subpackages `path` imports from (absolute or relative imports, at any depth)."""
    module = ["drtframe", *path.relative_to(PACKAGE).with_suffix("").parts]
    package = module[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = (package[:len(package) - node.level + 1] if node.level else [])
            target = [*target, *(node.module or "").split(".")] if node.module else target
        elif isinstance(node, ast.Import):
            target = node.names[0].name.split(".")
        else:
            continue
        if len(target) > 1 and target[0] == "drtframe" and (PACKAGE / target[1]).is_dir():
            found.add(target[1])
    return found


def test_every_subpackage_imports_only_the_layers_above_it_in_the_readme():
    order = layers()
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert sorted(order) == packages, "README's 'Where the code is' table lists each subpackage once"
    for path in PACKAGE.rglob("*.py"):
        if path.parent == PACKAGE:
            continue  # the top level (the lazy public API and errors)
        own = path.relative_to(PACKAGE).parts[0]
        for used in imported_subpackages(path) - {own}:
            assert order.index(used) < order.index(own), f"{path.relative_to(ROOT)} imports drtframe.{used}, listed below {own}"
