"""Vocabulary-wide row reductions agree with torch's whole-row ones."""

from __future__ import annotations

import pytest
import torch

from drtframe.forward.logits import row_log_softmax_at, row_logsumexp, row_top_indices


@pytest.mark.parametrize("width, k", [(49_152, 32), (1_024, 8), (1_000, 4), (256, 2), (384, 3)])
def test_row_top_indices_pick_the_rows_largest_entries(width, k):
    generator = torch.Generator().manual_seed(width + k)
    rows = torch.randn(40, width, generator=generator)
    rows[:20, 100:100 + 3 * k] += 8  # some rows' largest entries crowd into one or two blocks
    got = torch.sort(row_top_indices(rows, k), dim=-1).values
    expected = torch.sort(rows.topk(k, dim=-1).indices, dim=-1).values
    assert torch.equal(got, expected)


def test_row_logsumexp_equals_torchs_after_the_preparation():
    rows = torch.randn(70, 3_000, dtype=torch.bfloat16) * 5

    def capped(z, start):
        z.div_(30).tanh_().mul_(30)

    expected = torch.logsumexp(torch.tanh(rows.float() / 30) * 30, dim=-1)
    assert torch.allclose(row_logsumexp(rows, capped), expected, atol=1e-5)
    assert torch.allclose(row_logsumexp(rows), torch.logsumexp(rows.float(), dim=-1), atol=1e-5)


def test_row_logsumexp_holds_beyond_float32s_range_of_exponentials():
    rows = torch.randn(70, 3_000) * 5
    rows[3] += 200  # e^200 overflows float32: that chunk is redone shifted
    rows[40] -= 300  # so does a sum too small to trust
    rows[66, 7] = 95.0  # one logit past e^88 in the last chunk
    assert torch.allclose(row_logsumexp(rows), torch.logsumexp(rows, dim=-1), atol=1e-5)
    assert torch.allclose(row_logsumexp(rows.bfloat16()), torch.logsumexp(rows.bfloat16().float(), dim=-1), atol=1e-5)
    # chunks of 8: only three of nine are redone, the others are taken as summed
    assert torch.allclose(row_logsumexp(rows, chunk=8), torch.logsumexp(rows, dim=-1), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_row_log_softmax_at_is_log_softmax_to_the_bit(dtype):
    generator = torch.Generator().manual_seed(1)
    rows = (torch.randn(70, 3_000, generator=generator) * 5).to(dtype)
    at = torch.tensor([0, 0, 5, 31, 32, 33, 69, 69, 40])  # rows read twice, across chunk edges
    targets = torch.randint(0, 3_000, (len(at),), generator=generator)
    expected = torch.log_softmax(rows.float(), dim=-1)[at, targets]
    assert torch.equal(row_log_softmax_at(rows, at, targets), expected)
    assert torch.equal(row_log_softmax_at(rows, at, targets, chunk=7), expected)
