"""A short timed greedy generation, to report what pruning buys in decoding speed."""

from __future__ import annotations

import time

import torch

from .models.handle import ModelHandle

PROMPT = "The history of the printing press begins"


@torch.inference_mode()
def generation_tokens_per_second(handle: ModelHandle, new_tokens: int = 32, repeats: int = 3) -> float:
    """Best of `repeats` greedy generations of exactly `new_tokens` tokens, after one warm-up."""
    tok = handle.tokenizer
    inputs = tok(PROMPT, return_tensors="pt").to(handle.device)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    kwargs = dict(do_sample=False, min_new_tokens=new_tokens, max_new_tokens=new_tokens, pad_token_id=pad)
    handle.model.generate(**inputs, **{**kwargs, "min_new_tokens": 2, "max_new_tokens": 2})
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        handle.model.generate(**inputs, **kwargs)
        best = min(best, time.perf_counter() - start)
    return new_tokens / best
