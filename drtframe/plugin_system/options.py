"""Per-method options: a pydantic schema per plugin class that rejects unknown keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import DrtframeError
from .suggest import unknown_name


class Options(BaseModel):
    """Base of every plugin's options. Subclass it and declare typed fields with defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_option_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """Turn ['n=2', 'seed=3'] (from repeated `-o key=value`) into a dict; reject malformed pairs."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DrtframeError(f"option {pair!r} is not of the form key=value")
        out[key.strip()] = value.strip()
    return out


def build_options(schema: type[Options], values: Mapping[str, Any], owner: str) -> Options:
    """Validate `values` against `schema`; unknown keys and bad values become one clear error."""
    known = schema.model_fields
    for key in values:
        if key not in known:
            raise unknown_name(f"option of {owner}", key, known)
    try:
        return schema(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise DrtframeError(f"option {field!r} of {owner}: {first['msg']}") from None
