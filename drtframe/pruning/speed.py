"""Short timed greedy generations, to report what pruning buys in decoding speed.

The original and the pruned model are timed in alternation (original, pruned, original, ...) and
each keeps its best run, so that a burst of load on the machine hits both alike instead of
inflating or hiding the speed-up.
"""

from __future__ import annotations

import time

import torch

from ..models.handle import ModelHandle

PROMPT = "The history of the printing press begins"


def _generate(handle: ModelHandle, new_tokens: int) -> float:
    """Seconds for one greedy generation of exactly `new_tokens` tokens."""
    tok = handle.tokenizer
    inputs = tok(PROMPT, return_tensors="pt").to(handle.device)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    start = time.perf_counter()
    handle.model.generate(**inputs, do_sample=False, min_new_tokens=new_tokens, max_new_tokens=new_tokens,
                          pad_token_id=pad)
    return time.perf_counter() - start


@torch.inference_mode()
def generation_speeds(handle: ModelHandle, removed: tuple[int, ...], new_tokens: int = 32,
                      rounds: int = 3) -> tuple[float, float]:
    """Tokens/s of the model as it is and without `removed`: best of `rounds` alternating runs each,
    after a short warm-up of each."""
    def timed(pruned: bool, tokens: int) -> float:
        if not pruned:
            return _generate(handle, tokens)
        with handle.temporarily_without(removed) as without:
            return _generate(without, tokens)

    for pruned in (False, True):
        timed(pruned, 2)
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for pruned in (False, True):
            best[pruned] = min(best[pruned], timed(pruned, new_tokens))
    return new_tokens / best[0], new_tokens / best[1]
