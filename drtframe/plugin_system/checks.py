"""Plugin code is called through checks, so a faulty plugin fails with one line naming itself.

`checked(obj, entry, checks)` makes the named methods of a plugin instance (a scorer's `score`, a
probe's `measure`) answer through a wrapper: an exception from the plugin's code becomes a
`DrtframeError` naming the plugin, the method, and the file and line that raised; a result the
check refuses (three scores for thirty layers) fails before anything uses it. The instance keeps
its class, so schedules that look for their own scorer class still find it. The checks themselves
live beside the base classes that define what a method must return.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import TypeVar

from ..errors import DrtframeError
from .faults import fault
from .manager import Entry

# check(result, *the method's arguments) -> what is wrong with the result, or None
Check = Callable[..., "str | None"]
T = TypeVar("T")


def checked(obj: T, entry: Entry, checks: Mapping[str, Check]) -> T:
    """`obj` (an instance of `entry`'s class) with each method in `checks` answering through its check."""
    for method, check in checks.items():
        setattr(obj, method, _through(getattr(obj, method), f"{entry.who()}: {type(obj).__name__}.{method}",
                                      type(obj).__module__, check))
    return obj


def _through(method: Callable, label: str, module: str, check: Check) -> Callable:
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            result = method(*args, **kwargs)
        except DrtframeError:
            raise
        except Exception as exc:
            raise DrtframeError(f"{label} raised {fault(exc, module)}") from exc
        problem = check(result, *args, **kwargs)
        if problem:
            raise DrtframeError(f"{label} {problem}")
        return result

    return call


def count_problem(values: object, count: int, what: str, expected: str, numbers: bool = True) -> str | None:
    """What is wrong with `values` as `count` `what` ("returned 3 scores for {expected}"), each a finite
    Python int or float if `numbers` (what JSON outputs hold: not a tensor or a numpy float32); None when
    nothing is."""
    try:
        values = list(values)
    except TypeError:
        return f"returned {type(values).__name__}, not a list of {what}"
    if len(values) != count:
        return f"returned {len(values)} {what} for {expected}"
    for position, value in enumerate(values) if numbers else ():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return (f"returned {value!r} at position {position} of its {what}; each must be a finite Python "
                    f"number (float(x) or .tolist() turns tensors into them)")
    return None
