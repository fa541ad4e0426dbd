"""drtframe reproduces lm-evaluation-harness 0.4.13's per-item log-likelihoods on SmolLM2-135M.

The reference slice (tests/data/lmeval_slice.json) was written by benchmarks/lmeval_parity.py; the
file records the lm-eval version and the exact command.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TEST_DATA
from drtframe.evaluation.runner import evaluate, resolve_benchmark
from drtframe.models.loading import ModelSpec, load_model

pytestmark = pytest.mark.slow
SLICE = json.loads((Path(__file__).parent / "data" / "lmeval_slice.json").read_text())


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):
    from drtframe.plugin_system.manager import load_registry

    registry = load_registry()
    return registry, load_model(ModelSpec(str(smollm2_dir), device="cpu", dtype="float32"), registry)


@pytest.mark.parametrize("task", sorted(SLICE["tasks"]))
def test_same_predictions_and_loglikelihoods_as_lm_eval(task, smollm2):
    registry, handle = smollm2
    reference = SLICE["tasks"][task]
    expected = reference["loglikelihoods"]
    result = evaluate(handle, resolve_benchmark(registry, task, reference["split"]), None, len(expected),
                      TEST_DATA / "mc")
    assert len(result.items) == len(expected)
    for item, lls in zip(result.items, expected):
        # float32 sums: the slice was written on one CPU; another CPU's kernels block the sums differently
        # (an AVX2-only EPYC: HellaSwag and PIQA up to 3.05e-4 away on sums near -40, 7.5e-6 relative)
        assert item.loglikelihoods == pytest.approx(lls, rel=1e-5, abs=2e-4)
        assert item.pred == max(range(len(lls)), key=lls.__getitem__)
