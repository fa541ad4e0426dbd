"""The real Gemma-3-270M (18 blocks, sliding and full attention, 262k vocabulary): the alias converts and
loads, a pruned copy that drops full-attention blocks reloads with identical logits over more than
one sliding window, and the lens's last layer is what evaluation scores."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from drtframe.evaluation.loglikelihood import choice_scores
from drtframe.models.loading import ModelSpec, load_model
from drtframe.probing.lens import layer_scores
from drtframe.pruning.saving import save_pruned
from drtframe.scoring.calibration_items import ItemWindow
from test_architectures import hand_pruned

pytestmark = pytest.mark.slow
REMOVED = (5, 11, 12)  # two of its three full-attention blocks and a sliding one


@pytest.fixture(scope="module")
def handle(gemma3_dir):
    from drtframe.plugin_system.manager import load_registry

    return load_model(ModelSpec(str(gemma3_dir)), load_registry())


def logits(model, ids):
    with torch.inference_mode():
        return model(ids).logits


def test_alias_is_converted_without_quantizer(gemma3_dir):
    config = json.loads((gemma3_dir / "config.json").read_text())
    assert config["model_type"] == "gemma3_text" and config["num_hidden_layers"] == 18
    assert config["vocab_size"] == 262144 and "quantization_config" not in config
    assert [i for i, t in enumerate(config["layer_types"]) if t == "full_attention"] == [5, 11, 17]


def test_pruned_gemma3_matches_hand_deleted_and_reloads_with_identical_logits(gemma3_dir, handle, tmp_path):
    ids = AutoTokenizer.from_pretrained(gemma3_dir)(" ".join(["The river ran past the mill."] * 90),
                                                    return_tensors="pt").input_ids
    assert ids.shape[1] > 600  # past the 512-token sliding window
    reference = hand_pruned(AutoModelForCausalLM.from_pretrained(gemma3_dir).eval(), REMOVED)
    with handle.temporarily_without(REMOVED) as pruned:
        assert torch.equal(logits(pruned.model, ids), logits(reference, ids))
        save_pruned(pruned, tmp_path / "out", {"removed_layers": list(REMOVED)}, overwrite=False)
        expected = logits(pruned.model, ids)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert reloaded.config.num_hidden_layers == 15
    assert reloaded.config.layer_types == reference.config.layer_types
    assert torch.equal(logits(reloaded, ids), expected)


def test_the_lens_last_layer_is_what_evaluation_scores(handle, registry):
    items = ItemWindow.sample(4).load(registry)[0]
    lens = layer_scores(handle, items)
    for per_layer, final in zip(lens, choice_scores(handle, items)):
        assert per_layer.shape[1] == 18
        assert torch.allclose(per_layer[:, -1:], final, atol=1e-4)
