"""'Did you mean ...' for unknown names, so a typo costs one glance, not a trip to the docs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from .errors import DrtframeError


def unknown_name(kind: str, name: str, known: Iterable[str]) -> DrtframeError:
    """Build the error for an unknown `name` of `kind`, suggesting the closest known names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    elif len(known) <= 12:
        hint = "known: " + ", ".join(known) if known else "none are installed"
    else:
        hint = f"{len(known)} are known; list them with 'drtframe plugins'"
    return DrtframeError(f"unknown {kind} {name!r}; {hint}")
