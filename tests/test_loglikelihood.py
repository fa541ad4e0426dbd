"""The fast log-likelihood engine agrees with a direct full-sequence computation, per choice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from drtframe.evaluation.items import MCItem
from drtframe.evaluation.loglikelihood import loglikelihoods
from drtframe.evaluation.tokenize import encode_pair
from drtframe.methods import find_architecture
from drtframe.models.handle import ModelHandle
from tiny_models import CONFIGS, LAYERS, tiny_model, tiny_tokenizer


def items():
    """Shared contexts of varied length, multi-token and single-token choices, a varying-context item."""
    return [
        MCItem("t", 0, ("w1 w2 w3 w4 w5 w6 w7 w8 w9",) * 3, (" w10 w11", " w12", " w13 w14 w15 w16"), 0, (8, 4, 16)),
        MCItem("t", 1, ("w3 w9",) * 2, (" w4", " w5"), 1, (3, 3)),
        MCItem("t", 2, ("w20 w21 w22 w23", "w20 w21 w24"), (" w30 w31",) * 2, 0, (8, 8)),
        MCItem("t", 3, ("w40 w41 w42 w43 w44 w45 w46 w47 w48 w49 w50 w51 w52 w53",) * 2, (" w6 w6 w7", " w8"), 1, (9, 3)),
    ]


def direct(model, tokenizer, context, continuation):
    """The obvious computation: one unpadded forward of context+continuation, sum the log-probs."""
    pair = encode_pair(tokenizer, context, continuation)
    ids = torch.tensor([pair.context + pair.continuation])
    with torch.inference_mode():
        logprobs = F.log_softmax(model(ids).logits[0].float(), dim=-1)
    n = len(pair.continuation)
    positions = range(ids.shape[1] - n - 1, ids.shape[1] - 1)
    return sum(logprobs[p, t].item() for p, t in zip(positions, pair.continuation))


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
@pytest.mark.parametrize("budget", [16, 4096])
def test_engine_matches_direct_computation(model_type, budget, registry):
    model = tiny_model(model_type)
    tok = tiny_tokenizer()
    handle = ModelHandle(model, tok, "tiny", find_architecture(registry, model.config.model_type), LAYERS)
    got = loglikelihoods(handle, items(), budget=budget)
    for item, scores in zip(items(), got):
        expected = [direct(model, tok, c, k) for c, k in zip(item.contexts, item.continuations)]
        assert scores == pytest.approx(expected, abs=1e-4)


def test_progress_counts_every_item_once(registry):
    model = tiny_model("llama")
    handle = ModelHandle(model, tiny_tokenizer(), "tiny", find_architecture(registry, "llama"), LAYERS)
    seen = []
    loglikelihoods(handle, items(), budget=16, progress=seen.append)
    assert sum(seen) == len(items())


def test_continuation_groups_bound_padding_and_logit_rows():
    from drtframe.evaluation.loglikelihood import length_groups

    choices = [(k, 0, tuple(range(length))) for k, length in enumerate([2, 3, 3, 9, 10, 30, 31] * 20)]
    groups = length_groups(choices, max_positions=64)
    assert sorted(c for g in groups for c in g) == sorted(choices)
    for group in groups:
        steps = [len(c[2]) - 1 for c in group]
        assert max(steps) * len(group) <= 64 or len(group) == 1
        assert max(steps) <= 1.3 * min(steps)
