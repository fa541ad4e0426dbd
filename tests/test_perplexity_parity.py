"""The perplexity benchmarks on the real SmolLM2-135M: lm-evaluation-harness 0.4.13's numbers for
wikitext and lambada_openai, and a direct transformers computation for wikitext2_ppl.

The lm-eval reference (tests/data/lmeval_text_slice.json) was written by
benchmarks/lmeval_text_parity.py (the command is in the file); when it was written, drtframe's
wikitext log-likelihoods and metrics were identical to lm-eval's and LAMBADA's log-likelihoods within
6.2e-6. The tolerances are the MC parity test's: 2e-4 per item, 1e-5 relative for a document's
log-likelihood (a sum over thousands of tokens) and for the metrics.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import TEST_DATA
from drtframe.evaluation.chunked import joined_text
from drtframe.evaluation.runner import resolve_benchmark
from drtframe.evaluation.text_benchmark import text_result
from drtframe.evaluation.text_scores import load_text_items, text_scores
from drtframe.models.loading import ModelSpec, load_model
from drtframe.scoring.calibration import SAMPLE_TEXT

pytestmark = pytest.mark.slow
SLICE = json.loads((TEST_DATA / "lmeval_text_slice.json").read_text())
ROOT = TEST_DATA.parents[1]


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):
    from drtframe.plugin_system.manager import load_registry

    registry = load_registry()
    return registry, load_model(ModelSpec(str(smollm2_dir), device="cpu", dtype="float32"), registry)


@pytest.mark.parametrize("run", sorted(SLICE["runs"]))
def test_same_loglikelihoods_and_metrics_as_lm_eval(run, smollm2, monkeypatch):
    registry, handle = smollm2
    reference = SLICE["runs"][run]
    if reference["max_length"]:  # HFLM's max_length, as drtframe reads it: from the config
        monkeypatch.setattr(handle.model.config, "max_position_embeddings", reference["max_length"])
    benchmark = resolve_benchmark(registry, reference["benchmark"])
    items = load_text_items(handle, benchmark, reference["limit"], ROOT / reference["data_dir"])
    result = text_result(benchmark, items, text_scores(handle, items))
    lls = [ll for ll, _ in result["units"]]
    assert len(lls) == len(reference["loglikelihoods"])
    tolerance = dict(abs=2e-4) if benchmark.unit == "item" else dict(rel=1e-5, abs=0)
    assert lls == pytest.approx(reference["loglikelihoods"], **tolerance)
    if "is_greedy" in reference:
        assert result["correct"] == [int(g) for g in reference["is_greedy"]]
    reported = {key: result["metrics"][key] for key in reference["metrics"]}  # lm-eval ran without stderrs
    assert reported == pytest.approx(reference["metrics"], rel=1e-5)
    assert result["ppl"] == math.exp(-sum(lls) / sum(count for _, count in result["units"]))


def test_wikitext2_ppl_is_the_mean_loss_of_transformers_over_the_chunks(smollm2):
    registry, handle = smollm2
    benchmark = resolve_benchmark(registry, "wikitext2_ppl").configured(256)
    data = SAMPLE_TEXT.parent / "eval"
    items = load_text_items(handle, benchmark, 4, data)
    result = text_result(benchmark, items, text_scores(handle, items))
    rows = [json.loads(line)["text"] for line in (data / "Salesforce/wikitext/wikitext-2-raw-v1/test.jsonl").open()]
    ids = handle.tokenizer(joined_text(rows), add_special_tokens=False)["input_ids"]
    chunks = torch.tensor(ids[:4 * 256]).view(4, 256)
    with torch.inference_mode():
        losses = [handle.model(input_ids=chunk[None], labels=chunk[None]).loss.item() for chunk in chunks]
    assert [-ll / count for ll, count in result["units"]] == pytest.approx(losses, rel=1e-4)
    assert result["ppl"] == pytest.approx(math.exp(sum(losses) / 4), rel=1e-4)
    assert result["units"][0][1] == 255 and result["seq_len"] == 256
