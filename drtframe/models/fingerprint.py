"""What a model is, as opposed to what it is called: a digest of its config, tokenizer and weights.

Result caches keyed by a model's name serve one model's answers to another when the weights under
that name change (lm-evaluation-harness and lighteval both have such reports). Every weight byte is
hashed (about half a second per GB on CPU), so two models share cached results only when they
compute the same function. Weights a device map keeps on disk are read back one at a time, so a
dispatched model has the fingerprint of the same model loaded whole.
"""

from __future__ import annotations

import hashlib
import json

import torch
from transformers.integrations.accelerate import load_offloaded_parameter

from .handle import ModelHandle

# Config entries that name or locate a model without changing what it computes.
_NAMING_KEYS = {"_name_or_path", "name_or_path", "transformers_version", "_commit_hash"}


def model_fingerprint(handle: ModelHandle) -> str:
    """Hex digest of the config (names left out), the tokenizer's vocabulary and every tensor's bytes."""
    digest = hashlib.blake2b(digest_size=20)
    config = {k: v for k, v in handle.model.config.to_dict().items() if k not in _NAMING_KEYS}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    tokenizer = handle.tokenizer
    digest.update(json.dumps([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items()),
                              tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]).encode())
    with torch.no_grad():
        for name, tensor in sorted(handle.model.state_dict().items()):
            if tensor.device.type == "meta":  # offloaded by --device-map
                tensor = load_offloaded_parameter(handle.model, name)
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
