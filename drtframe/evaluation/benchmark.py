"""The benchmark base class: lm-eval's task model (docs -> text, choices, target) as Python.

A benchmark names its hub dataset, config and split, and turns each row into an `MCItem` in its
native format (lm-eval's prompt for the task of the same name) or in the other one: `letter`
(options listed "A. ...", the letter scored after "Answer:") or `cloze` (each option's text scored
as the continuation of "Question: ...\\nAnswer:").
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, ClassVar

from ..errors import DrtframeError
from ..plugin_system.base import PluginClass
from .items import MCItem

FORMATS = ("cloze", "letter")
LETTERS = string.ascii_uppercase


class Benchmark(PluginClass):
    """Base class of benchmarks. Subclass, set the dataset attributes and the doc_to_* methods."""

    dataset_path: ClassVar[str]
    dataset_name: ClassVar[str | None] = None
    split: ClassVar[str]
    native_format: ClassVar[str] = "cloze"
    target_delimiter: ClassVar[str] = " "
    prompt_prefix: ClassVar[str] = ""  # lm-eval's `description`, placed before every prompt
    data_file: ClassVar[Path | None] = None  # a JSONL file of `split`'s rows that replaces the hub and --data-dir

    def process_docs(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """lm-eval's `process_docs`: rows as stored -> docs the templates read (default: as is)."""
        return docs

    def doc_to_text(self, doc: dict) -> str | int:
        """The prompt; an int means the contexts are the choices (lm-eval's multiple inputs)."""
        raise NotImplementedError

    def doc_to_choice(self, doc: dict) -> list[str]:
        raise NotImplementedError

    def doc_to_target(self, doc: dict) -> int | str:
        raise NotImplementedError

    def question(self, doc: dict) -> str:
        """The question alone, used to build the non-native format."""
        raise DrtframeError(f"{self.name} defines no question text, so only its native format is available")

    def option_texts(self, doc: dict) -> list[str]:
        """The answer options as text, used to build the non-native format."""
        return self.doc_to_choice(doc)

    def gold(self, doc: dict) -> int:
        text = self.doc_to_text(doc)
        if isinstance(text, int):
            return text
        target = self.doc_to_target(doc)
        return target if isinstance(target, int) else self.doc_to_choice(doc).index(target)

    def item(self, doc: dict, index: int, fmt: str | None = None) -> MCItem:
        """The MC item for `doc` in `fmt` (default: the benchmark's native format)."""
        fmt = fmt or self.native_format
        if fmt == self.native_format:
            return self._native_item(doc, index)
        options = self.option_texts(doc)
        if fmt == "letter":
            if len(options) > len(LETTERS):
                raise DrtframeError(f"{self.name} has {len(options)} options; the letter format takes at most 26")
            listed = "".join(f"\n{LETTERS[i]}. {opt}" for i, opt in enumerate(options))
            context = f"{self.prompt_prefix}{self.question(doc)}{listed}\nAnswer:"
            choices = list(LETTERS[:len(options)])
        else:
            context = f"{self.prompt_prefix}Question: {self.question(doc)}\nAnswer:"
            choices = options
        return self._make(index, [context] * len(choices), [self.target_delimiter + c for c in choices],
                          self.gold(doc), [len(c) for c in choices])

    def _native_item(self, doc: dict, index: int) -> MCItem:
        text, choices = self.doc_to_text(doc), self.doc_to_choice(doc)
        if isinstance(text, int):  # contexts vary, the continuation is shared (winogrande)
            target = self.doc_to_target(doc)
            continuation = self.target_delimiter + target
            return self._make(index, [self.prompt_prefix + c for c in choices], [continuation] * len(choices),
                              text, [len(c) for c in choices])
        return self._make(index, [self.prompt_prefix + text] * len(choices),
                          [self.target_delimiter + c for c in choices], self.gold(doc), [len(c) for c in choices])

    def _make(self, index, contexts, continuations, gold, lengths) -> MCItem:
        if not 0 <= gold < len(continuations):
            raise ValueError(f"gold answer {gold} is not one of the {len(continuations)} choices")
        return MCItem(self.name, index, tuple(contexts), tuple(continuations), gold, tuple(lengths))

    def members(self) -> list[Benchmark]:
        """For a group benchmark (mmlu), the benchmarks it aggregates, each with a `category`;
        the group and each category are size-weighted over their member benchmarks. Else empty."""
        return []
