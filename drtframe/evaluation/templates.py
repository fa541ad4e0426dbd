"""Benchmarks written as lm-eval-style Jinja2 templates, for built-ins and user YAML files alike.

The rules follow lm-eval 0.4.x: a template that is exactly a column name reads that column;
otherwise it is rendered with StrictUndefined; a rendered choice list is parsed as a Python
literal; a rendered target that is all digits is an index, else the text of the gold choice.
"""

from __future__ import annotations

import ast
import functools
from typing import Any, ClassVar

import jinja2
import jinja2.meta

from .benchmark import Benchmark

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


@functools.lru_cache(maxsize=256)
def _compile(template: str) -> tuple[jinja2.Template, frozenset[str]]:
    return _env.from_string(template), frozenset(jinja2.meta.find_undeclared_variables(_env.parse(template)))


def render(template: str, doc: dict[str, Any]) -> str:
    """Render with the doc's fields; a field the template needs but the doc lacks is a KeyError."""
    compiled, fields = _compile(template)
    missing = sorted(fields - doc.keys())
    if missing:
        raise KeyError(missing[0])
    return compiled.render(**doc)


class TemplateBenchmark(Benchmark):
    """A benchmark whose doc_to_* are templates (strings, or a list of strings for choices)."""

    text_template: ClassVar[str]
    choice_template: ClassVar[str | list[str]]
    target_template: ClassVar[str | int]
    question_template: ClassVar[str | None] = None

    def doc_to_text(self, doc: dict) -> str:
        if self.text_template in doc:
            return doc[self.text_template]
        return render(self.text_template, doc)

    def doc_to_choice(self, doc: dict) -> list[str]:
        spec = self.choice_template
        if isinstance(spec, list):
            return [render(c, doc) for c in spec]
        if spec in doc:
            return list(doc[spec])
        return list(ast.literal_eval(render(spec, doc)))

    def doc_to_target(self, doc: dict) -> int | str:
        spec = self.target_template
        if isinstance(spec, int):
            return spec
        value = doc[spec] if spec in doc else render(spec, doc)
        if isinstance(value, int):
            return value
        value = str(value)
        return int(value) if value.strip().isdigit() else value

    def question(self, doc: dict) -> str:
        if self.question_template is None:
            return super().question(doc)
        return render(self.question_template, doc)
