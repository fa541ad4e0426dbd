"""A custom benchmark from a YAML file holding a subset of lm-eval's task keys; no code needed.

Keys: `task` (name), `dataset_path` (hub id, or `json` with `dataset_kwargs.data_files`),
`dataset_name`, `test_split`/`validation_split` (the split evaluated, test first as in lm-eval),
`doc_to_text`, `doc_to_choice`, `doc_to_target` (Jinja2 templates or column names),
`output_type: multiple_choice`, and optionally `description` and `target_delimiter`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import DrtframeError
from .templates import TemplateBenchmark

REQUIRED = ("doc_to_text", "doc_to_choice", "doc_to_target")
KNOWN = {"task", "dataset_path", "dataset_name", "dataset_kwargs", "test_split", "validation_split",
         "training_split", "output_type", "description", "target_delimiter", "metric_list", "metadata", "tag",
         *REQUIRED}


class YamlBenchmark(TemplateBenchmark):
    """A benchmark defined by a YAML task file."""


def load_yaml_benchmark(path: Path, split: str | None = None) -> YamlBenchmark:
    """Validate the YAML file and build a benchmark class from it; errors name the file and key."""
    if not path.is_file():
        raise DrtframeError(f"benchmark file not found: {path}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DrtframeError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(spec, dict):
        raise DrtframeError(f"{path}: expected a mapping of lm-eval task keys")
    unknown = sorted(set(spec) - KNOWN)
    if unknown:
        raise DrtframeError(f"{path}: unsupported key {unknown[0]!r} (supported: {', '.join(sorted(KNOWN))})")
    missing = [k for k in REQUIRED + ("dataset_path",) if k not in spec]
    if missing:
        raise DrtframeError(f"{path}: missing key {missing[0]!r}")
    if spec.get("output_type", "multiple_choice") != "multiple_choice":
        raise DrtframeError(f"{path}: output_type must be multiple_choice")
    split = split or spec.get("test_split") or spec.get("validation_split")
    if not split:
        raise DrtframeError(f"{path}: give test_split or validation_split")
    attrs = {
        "name": spec.get("task", path.stem), "dataset_path": spec["dataset_path"],
        "dataset_name": spec.get("dataset_name"), "split": split,
        "text_template": spec["doc_to_text"], "choice_template": spec["doc_to_choice"],
        "target_template": spec["doc_to_target"], "prompt_prefix": spec.get("description", ""),
        "target_delimiter": spec.get("target_delimiter", " "), "__doc__": f"Custom benchmark from {path}.",
    }
    if spec["dataset_path"] == "json":
        files = (spec.get("dataset_kwargs") or {}).get("data_files") or {}
        file = files.get(split) if isinstance(files, dict) else files
        if not isinstance(file, str):
            raise DrtframeError(f"{path}: dataset_path json needs dataset_kwargs.data_files.{split} as one file")
        attrs["data_file"] = (path.parent / file).resolve()
    return type("YamlBenchmark", (YamlBenchmark,), attrs)()
