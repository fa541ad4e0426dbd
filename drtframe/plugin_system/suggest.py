"""'Did you mean ...' for unknown names, so a typo costs one glance, not a trip to the docs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ..errors import DrtframeError


def did_you_mean(name: str, known: Iterable[str], n: int = 3) -> str | None:
    """'did you mean 'a' or 'b'?' for the (at most `n`) known names closest to `name`, None when none is close."""
    close = difflib.get_close_matches(name, sorted(known), n=n, cutoff=0.6)
    return "did you mean " + " or ".join(repr(c) for c in close) + "?" if close else None


def unknown_name(kind: str, name: str, known: Iterable[str], notes: Iterable[str] = ()) -> DrtframeError:
    """Build the error for an unknown `name` of `kind`, suggesting the closest known names.

    `notes` (e.g. plugins that failed to load) are said instead of listing the known names.
    """
    known = sorted(known)
    parts = [f"unknown {kind} {name!r}"]
    close = did_you_mean(name, known)
    if close:
        parts.append(close)
    notes = list(notes)
    if notes:
        parts.extend(notes)
    elif not close:
        if len(known) <= 12:
            parts.append("known: " + ", ".join(known) if known else "none are installed")
        else:
            parts.append(f"{len(known)} are known; list them with 'drtframe plugins'")
    return DrtframeError("; ".join(parts))
