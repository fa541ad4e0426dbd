"""The fast log-likelihood engine agrees with a direct full-sequence computation, per choice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from drtframe.evaluation.items import MCItem
from drtframe.evaluation.loglikelihood import loglikelihoods
from drtframe.evaluation.tokenize import encode_pair
from drtframe.models.architecture import find_architecture
from drtframe.models.handle import ModelHandle
from tiny_models import CONFIGS, LAYERS, tiny_model, tiny_tokenizer


def items():
    """Shared contexts of varied length, multi-token and single-token choices, a varying-context item,
    rows longer and shorter than the tiny models' sliding windows."""
    return [
        MCItem("t", 0, ("w1 w2 w3 w4 w5 w6 w7 w8 w9",) * 3, (" w10 w11", " w12", " w13 w14 w15 w16"), 0, (8, 4, 16)),
        MCItem("t", 1, ("w3 w9",) * 2, (" w4", " w5"), 1, (3, 3)),
        MCItem("t", 2, ("w20 w21 w22 w23", "w20 w21 w24"), (" w30 w31",) * 2, 0, (8, 8)),
        MCItem("t", 3, ("w40 w41 w42 w43 w44 w45 w46 w47 w48 w49 w50 w51 w52 w53",) * 2, (" w6 w6 w7", " w8"), 1, (9, 3)),
        # a row within the tiny sliding window (4) with two multi-token choices: a custom mask there
        MCItem("t", 4, ("w7",) * 2, (" w8 w9", " w10 w11"), 0, (6, 8)),
        # choices that begin alike share a prefix tree: branches at depths 1 and 2, one choice a prefix of another
        MCItem("t", 5, ("w1 w2",) * 4, (" w8 w9 w10", " w8 w9 w11", " w8 w12", " w8 w9"), 2, (10, 10, 7, 6)),
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


def test_batches_bound_tokens_reads_padding_and_never_mix_rows_across_the_window():
    from drtframe.evaluation.loglikelihood import Unit, batches

    rows = [Unit(tuple(range(n)), [(k, 0, (1,) * m), (k, 1, (2,) * m)])
            for k, (n, m) in enumerate([(40, 3), (30, 9), (12, 2), (11, 5), (10, 1), (9, 2), (3, 2)] * 5)]
    rows.sort(key=lambda u: -len(u))
    cut = batches(rows, budget=128, slack=0.7, window=20, max_reads=24)
    assert [u for b in cut for u in b] == rows
    for batch in cut:
        longest = len(batch[0])
        assert longest * len(batch) <= 128 or len(batch) == 1
        assert sum(u.reads() for u in batch) <= 24 or len(batch) == 1
        assert min(len(u) for u in batch) >= 0.7 * longest
        assert len({len(u) > 20 for u in batch}) == 1


def test_a_row_past_the_window_holds_one_multi_token_choice():
    from drtframe.evaluation.loglikelihood import Unit, _split

    unit = Unit((5,) * 6, [(0, 0, (1, 2, 3)), (0, 1, (4,)), (0, 2, (6, 7)), (0, 3, (8,))])
    assert _split(unit, None) == [unit] and _split(unit, len(unit)) == [unit]
    rows = _split(unit, len(unit) - 1)
    assert [[c for _, c, _ in row.choices] for row in rows] == [[1, 3, 0], [2]]
    assert all(row.segments() == 1 and row.context == unit.context for row in rows)
