"""drtframe's tiled output head gives the next-token NLL of the model's own logits, on every
architecture, and falls back to those logits for a head it does not reproduce."""

from __future__ import annotations

import pytest
import torch

import drtframe.forward.output_head as output_head
from drtframe.forward.output_head import OutputHead, next_token_nll
from test_scorers import calibration, handle_of
from tiny_models import CONFIGS, tiny_model


def direct_nll(model, ids) -> torch.Tensor:
    """The obviously correct NLL: log_softmax of the model's whole logits at each next token."""
    with torch.inference_mode():
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
    return -torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def head_rows_seen(model) -> list[int]:
    """Records the positions each call of the model's own head projects."""
    seen: list[int] = []
    model.get_output_embeddings().register_forward_hook(lambda m, args, out: seen.append(out.shape[-2]))
    return seen


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_tiled_head_gives_the_models_nll_without_its_whole_logits(model_type, registry, monkeypatch):
    monkeypatch.setattr(output_head, "HEAD_ROWS", 5)  # uneven tiles: rows and vocabulary both cut
    monkeypatch.setattr(output_head, "HEAD_COLUMNS", 17)
    model = tiny_model(model_type)
    if model_type == "gemma3_text":
        model.config.final_logit_softcapping = 3.0  # small enough to bend these logits
    handle, ids = handle_of(model, registry), calibration(3, 12)
    expected = direct_nll(model, ids)
    seen = head_rows_seen(model)
    with torch.inference_mode():
        first, later = next_token_nll(handle, ids), next_token_nll(handle, ids)
    # the first forward projects all 33 positions read and checks the tiles' head against them; later
    # ones have the model project one position (checked again) and the tiles do the rest
    assert seen == [33, 1]
    assert torch.allclose(first, expected, atol=1e-5) and torch.allclose(later, expected, atol=1e-5)


def test_a_head_it_does_not_reproduce_is_read_through_the_models_logits(registry):
    model = tiny_model("llama")
    model.get_output_embeddings().register_forward_hook(lambda m, args, out: out * 0.5)  # a logit scale
    handle, ids = handle_of(model, registry), calibration(3, 12)
    expected = direct_nll(model, ids)
    seen = head_rows_seen(model)
    with torch.inference_mode():
        first, second = next_token_nll(handle, ids), next_token_nll(handle, ids)
    assert seen == [33, 33]  # the check fails on the first forward: the model's own logits every time
    assert torch.allclose(first, expected, atol=1e-5) and torch.equal(first, second)


def test_rows_beyond_float32s_range_of_exponentials_are_redone_from_whole_logits():
    generator = torch.Generator().manual_seed(0)
    head = OutputHead(torch.randn(50, 8, generator=generator), torch.randn(50, generator=generator), None)
    normed = torch.randn(6, 8, generator=generator)
    normed[2] *= 60  # logits far past e^88
    expected = torch.logsumexp(head.logits(normed), -1)
    assert torch.allclose(head.logsumexp(normed), expected, atol=1e-4)


def test_a_head_that_changes_after_its_check_is_an_error_not_a_wrong_number(registry):
    model = tiny_model("llama")
    handle, ids = handle_of(model, registry), calibration(3, 12)
    with torch.inference_mode():
        next_token_nll(handle, ids)
        model.get_output_embeddings().register_forward_hook(lambda m, args, out: out * 0.5)
        with pytest.raises(RuntimeError, match="stopped reproducing"):
            next_token_nll(handle, ids)
