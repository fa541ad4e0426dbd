"""Shared fixtures: a fresh registry, tiny seeded models on disk, and the real SmolLM2-135M."""

from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Small slices of real benchmark rows and WikiText-2 (licences in tests/data/README.md): tests read
# nothing outside the clone.
TEST_DATA = Path(__file__).parent / "data"
WIKITEXT_HEAD = TEST_DATA / "text" / "wikitext-2-raw-test-head-160k.txt"


@pytest.fixture(autouse=True)
def bfloat16_ranking(monkeypatch):
    """Scorers rank in a bfloat16 copy only where the device has native bfloat16 (`fast_bfloat16`); the
    tests run that path on every CPU, so that it is tested on machines without it too."""
    monkeypatch.setattr("drtframe.models.handle.fast_bfloat16", lambda device: True)


@pytest.fixture
def registry():
    from drtframe.plugin_system.manager import load_registry

    return load_registry()


@pytest.fixture
def transformers_log():
    """Everything transformers logs while the test runs (it does not propagate to caplog)."""
    import transformers

    logger = transformers.utils.logging.get_logger("transformers")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    logger.addHandler(handler)
    yield buffer
    logger.removeHandler(handler)


@pytest.fixture
def tiny_llama_dir(tmp_path):
    """A tiny seeded Llama with a tokenizer, saved as a transformers directory."""
    from tiny_models import tiny_model, tiny_tokenizer

    path = tmp_path / "tiny-llama"
    tiny_model("llama").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def decided_task(tiny_llama_dir, tmp_path, registry):
    """A YAML task of 80 items whose gold answers are the dense tiny Llama's predictions (it decides them)."""
    import json
    import random

    from drtframe.evaluation.loglikelihood import loglikelihoods
    from drtframe.evaluation.runner import load_items, resolve_benchmark
    from drtframe.models.loading import ModelSpec, load_model
    from test_eval_cli import TASK

    rng = random.Random(0)
    rows = [{"question": " ".join(f"w{rng.randrange(2, 90)}" for _ in range(4)),
             "options": [f"w{rng.randrange(2, 90)}" for _ in range(3)], "answer": 0} for _ in range(80)]
    path = tmp_path / "task.yaml"
    path.write_text(TASK)
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    handle = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    items = load_items(resolve_benchmark(registry, str(path)), None, None, None)
    for row, lls in zip(rows, loglikelihoods(handle, items)):
        row["answer"] = max(range(3), key=lambda i: lls[i])
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def converted(alias: str) -> Path:
    """A real model alias, converted once into DRTFRAME_CACHE (set by .ci/run to a workspace dir)."""
    from drtframe.models.aliases import ALIASES, ensure_alias

    if not os.environ.get("DRTFRAME_CACHE"):
        os.environ["DRTFRAME_CACHE"] = str(Path(__file__).resolve().parents[1] / ".ci-cache" / "drtframe")
    return ensure_alias(ALIASES[alias])


@pytest.fixture(scope="session")
def smollm2_dir():
    """The real SmolLM2-135M."""
    return converted("smollm2-135m")


@pytest.fixture(scope="session")
def gemma3_dir():
    """The real Gemma-3-270M."""
    return converted("gemma3-270m")


@pytest.fixture(autouse=True)
def wide_console():
    """Rich wraps table cells to the terminal width; tests read whole rows."""
    from drtframe.cli.console import console, out

    saved = console.width, out.width
    console.width = out.width = 250
    yield
    console.width, out.width = saved
