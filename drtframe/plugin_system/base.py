"""What every class handed to a `drtframe_register_*` hook has in common."""

from __future__ import annotations

from typing import ClassVar

from .options import Options


class NoOptions(Options):
    """A method without options."""


class PluginClass:
    """Base of scorers, schedules, probes and benchmarks: a name, a description and options.

    `name` is what users type; the first line of the class docstring is the description that
    `drtframe plugins` shows; `Options` is a pydantic schema that rejects unknown keys.
    """

    name: ClassVar[str]
    Options: ClassVar[type[Options]] = NoOptions

    def __init__(self, options: Options | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @classmethod
    def description(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""
