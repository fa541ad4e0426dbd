"""`weights_of` / `same_weights`: what tells a scorer's kept forward results that the model changed."""

from __future__ import annotations

import torch

from drtframe.models.weights import same_weights, weights_of
from tiny_models import tiny_longrope_phi3, tiny_model


def test_forwards_and_removed_blocks_leave_the_weights_the_same():
    """Not even where the rope type rewrites its (non-persistent) frequency buffer on every forward."""
    for model in (tiny_model("llama"), tiny_longrope_phi3(), tiny_model("gemma3_text")):
        seen = weights_of(model)
        ids = torch.randint(2, 90, (2, 24))
        with torch.inference_mode():
            model(ids)
        model(ids)
        del model.model.layers[1]
        assert same_weights(model, seen)


def test_a_weight_changed_in_place_replaced_or_loaded_is_seen():
    changes = {
        "in place": lambda m: m.model.layers[0].mlp.down_proj.weight.mul_(1.5),
        "replaced": lambda m: setattr(m.model.layers[0].mlp, "down_proj", torch.nn.Linear(64, 32, bias=False)),
        "loaded": lambda m: m.load_state_dict(tiny_model("llama", seed=1).state_dict()),
        "buffer": lambda m: m.model.layers[0].register_buffer("scale", torch.ones(1)),
    }
    for name, change in changes.items():
        model = tiny_model("llama")
        seen = weights_of(model)
        with torch.no_grad():
            change(model)
        assert not same_weights(model, seen), name


def test_weights_off_device_and_inference_tensors_are_left_out():
    """A device map's meta placeholders are swapped on every forward by accelerate, and inference
    tensors keep no version: neither counts (and neither fails)."""
    model = tiny_model("llama")
    model.model.layers[2].mlp.up_proj.weight = torch.nn.Parameter(torch.empty(64, 32, device="meta"))
    with torch.inference_mode():
        model.model.layers[3].register_buffer("made_in_inference", torch.ones(2))
    seen = weights_of(model)
    model.model.layers[2].mlp.up_proj.weight = torch.nn.Parameter(torch.empty(64, 32, device="meta"))
    assert same_weights(model, seen)
