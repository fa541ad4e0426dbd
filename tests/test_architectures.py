"""Removing blocks from every supported architecture matches blocks deleted by hand, reloads exactly,
and keeps the KV cache consistent."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from drtframe.errors import DrtframeError
from drtframe.models.architecture import find_architecture
from drtframe.models.handle import ModelHandle
from drtframe.pruning.saving import save_pruned
from tiny_models import CONFIGS, LAYERS, sample_ids, tiny_model, tiny_tokenizer

# Written out here, independently of the architecture plugin, so the test checks the plugin.
LAYER_PREFIX = {
    "llama": "model.layers.", "qwen2": "model.layers.", "qwen3": "model.layers.", "qwen3_moe": "model.layers.",
    "mistral": "model.layers.", "gemma3_text": "model.layers.", "phi3": "model.layers.",
    "gpt2": "transformer.h.", "gpt_neox": "gpt_neox.layers.", "opt": "model.decoder.layers.",
}
REMOVED = (1, 3)


def hand_pruned(model, removed):
    """A fresh model built with fewer layers, loaded with the kept layers' weights renamed by hand."""
    config = copy.deepcopy(model.config)
    kept = [i for i in range(config.num_hidden_layers) if i not in removed]
    config.num_hidden_layers = len(kept)
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in kept]
    if getattr(config, "mlp_only_layers", None):
        config.mlp_only_layers = [kept.index(i) for i in config.mlp_only_layers if i in kept]
    reference = type(model)(config).eval()
    prefix = LAYER_PREFIX[model.config.model_type]
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith(prefix):
            index, rest = key[len(prefix):].split(".", 1)
            if int(index) in removed:
                continue
            key = f"{prefix}{kept.index(int(index))}.{rest}"
        state[key] = value
    reference.load_state_dict(state, strict=True)
    return reference


def handle_for(model, registry):
    arch = find_architecture(registry, model.config.model_type)
    return ModelHandle(model, tiny_tokenizer(), "tiny", arch, LAYERS)


def logits(model, ids):
    with torch.inference_mode():
        return model(ids).logits


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_pruned_equals_hand_deleted_and_reloads_exactly(model_type, registry, tmp_path, transformers_log):
    model = tiny_model(model_type)
    ids = sample_ids()
    reference = hand_pruned(model, REMOVED)
    pruned = handle_for(model, registry).without(REMOVED)

    assert pruned.num_layers == LAYERS - len(REMOVED) == model.config.num_hidden_layers
    assert torch.equal(logits(pruned.model, ids), logits(reference, ids))

    save_pruned(pruned, tmp_path / "out", {"removed_layers": list(REMOVED)}, overwrite=False)
    transformers_log.truncate(0)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    log = transformers_log.getvalue()
    assert "MISSING" not in log and "newly initialized" not in log and "UNEXPECTED" not in log, log
    assert torch.equal(logits(reloaded, ids), logits(pruned.model, ids))

    prompt = ids[:1, :6]
    greedy = dict(max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=1)
    with torch.inference_mode():
        cached = reloaded.generate(prompt, use_cache=True, **greedy)
        uncached = reloaded.generate(prompt, use_cache=False, **greedy)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text", "gpt2"])
def test_temporary_removal_restores_the_model(model_type, registry):
    model = tiny_model(model_type)
    ids = sample_ids()
    before = logits(model, ids)
    handle = handle_for(model, registry)
    with handle.temporarily_without((0, 2)) as pruned:
        assert pruned.kept == (1, 3, 4)
        assert not torch.equal(logits(pruned.model, ids), before)
    assert handle.num_layers == LAYERS == model.config.num_hidden_layers
    assert torch.equal(logits(model, ids), before)


def test_nested_removal_uses_original_numbering(registry):
    model = tiny_model("llama")
    reference = hand_pruned(tiny_model("llama"), (0, 2, 4))
    handle = handle_for(model, registry).without((2,))
    assert handle.kept == (0, 1, 3, 4)
    handle = handle.without((0, 4))
    assert handle.removed == (0, 2, 4) and handle.kept == (1, 3)
    assert torch.equal(logits(model, sample_ids()), logits(reference, sample_ids()))


@pytest.mark.parametrize("removed, message", [
    ((5,), "out of range"), ((-1,), "out of range"), ((1, 1), "more than once"), ((0, 1, 2, 3, 4), "all 5 layers"),
])
def test_bad_removals_are_refused(removed, message, registry):
    handle = handle_for(tiny_model("llama"), registry)
    with pytest.raises(DrtframeError, match=message):
        handle.without(removed)
    assert handle.num_layers == LAYERS


def test_gpt2_with_index_dependent_scaling_is_refused(registry):
    model = tiny_model("gpt2")
    model.config.scale_attn_by_inverse_layer_idx = True
    with pytest.raises(DrtframeError, match="scale_attn_by_inverse_layer_idx"):
        handle_for(model, registry).without((1,))
