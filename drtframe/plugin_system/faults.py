"""One line for an exception raised by plugin code, naming the file and line in the plugin that raised it.

A traceback through drtframe, pluggy and torch buries the one frame a user can report and an author
can fix; this finds it: the innermost frame in the plugin's own files (its module, or the package
it belongs to).
"""

from __future__ import annotations

import importlib.util
import traceback
from pathlib import Path


def one_line(exc: BaseException) -> str:
    """'TypeError: message' with all whitespace folded."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return " ".join(text.split())


def _plugin_files(module: str) -> Path | None:
    """The file or package directory of `module`'s top-level package, None when it cannot be found."""
    try:
        spec = importlib.util.find_spec(module.partition(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not Path(spec.origin).exists():
        return None
    return Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)


def where(exc: BaseException, module: str) -> str | None:
    """'file:line' in the plugin whose code lives in `module` where `exc` was raised, None if not there."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    root = _plugin_files(module)
    if root is None:
        return None
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).is_relative_to(root)]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def fault(exc: BaseException, module: str) -> str:
    """The exception on one line, with where in the plugin (code in `module`) it was raised."""
    if isinstance(exc, SyntaxError):
        message = f"SyntaxError: {exc.msg}"
    else:
        message = one_line(exc)
    location = where(exc, module)
    return f"{message} (at {location})" if location else message
