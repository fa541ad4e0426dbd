"""Split (context, continuation) into token ids exactly as lm-evaluation-harness 0.4.x does.

lm-eval moves trailing spaces of the context onto the continuation, encodes context+continuation
as a whole and takes the continuation tokens as what follows the context's own encoding; no
special tokens are added (HFLM's default for causal models). An empty context is replaced by the
end-of-text token. The model then sees `context_ids + continuation_ids`, truncated from the left
to max_length + 1 tokens with the last dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncodedPair:
    context: tuple[int, ...]
    continuation: tuple[int, ...]


def encode_pair(tokenizer, context: str, continuation: str) -> EncodedPair:
    """lm-eval's `_encode_pair`, including its empty-context rule."""
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    if context == "":
        eot = tokenizer.eos_token_id
        return EncodedPair((eot,), tuple(encode(continuation)))
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    whole = encode(context + continuation)
    context_ids = encode(context)
    return EncodedPair(tuple(context_ids), tuple(whole[len(context_ids):]))


def truncate(pair: EncodedPair, max_length: int) -> EncodedPair:
    """Keep the last max_length + 1 tokens of context + continuation, as lm-eval does."""
    keep = max_length + 1 - len(pair.continuation)
    if keep < 1:
        raise ValueError(f"a continuation of {len(pair.continuation)} tokens exceeds the model's {max_length}")
    return EncodedPair(pair.context[-keep:], pair.continuation)
