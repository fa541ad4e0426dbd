"""linear_ls healing on tiny models: the fold equals the patch applied as a hook, T is the identity
when the removed blocks add nothing, padding is ignored, and the healed model saves and reloads."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from drtframe.errors import DrtframeError
from drtframe.healing.healer import HealingContext
from drtframe.models.architecture import get_path
from drtframe_plugins.healing import LinearLS
from test_scorers import calibration, deep_llama, handle_of
from tiny_models import tiny_model

REMOVED = (2, 3, 6)  # runs [2, 4) and [6, 7)


def ctx_for(handle, removed=REMOVED, **kwargs) -> HealingContext:
    return HealingContext(handle, removed, calibration(samples=12, length=16), **kwargs)


def logits(handle, ids) -> torch.Tensor:
    with torch.no_grad():
        return handle.model(input_ids=ids).logits


def test_the_folded_patch_equals_the_patch_applied_as_a_hook(registry):
    folded = handle_of(deep_llama(), registry)
    hooked = handle_of(copy.deepcopy(folded.model), registry)
    fits = LinearLS().fit(ctx_for(hooked))
    record = LinearLS().heal(ctx_for(folded))
    assert [r["folded_into"] for r in record["runs"]] == [1, 5]
    for (s, e), (t, *_ ) in fits.items():
        module = get_path(hooked.layers[s - 1], "mlp.down_proj")
        module.register_forward_hook(lambda m, a, out, t=t: (out.double() @ t).to(out.dtype))
    ids = calibration(samples=3, length=10, seed=9)
    with folded.temporarily_without(REMOVED) as a, hooked.temporarily_without(REMOVED) as b:
        assert torch.allclose(logits(a, ids), logits(b, ids), atol=1e-5)


def test_t_is_the_identity_when_the_removed_blocks_add_nothing(registry):
    handle = handle_of(deep_llama(), registry)
    with torch.no_grad():
        for layer in REMOVED:
            handle.layers[layer].self_attn.o_proj.weight.zero_()
            handle.layers[layer].mlp.down_proj.weight.zero_()
    healer = LinearLS(LinearLS.Options(ridge=1e-12))
    for fit in healer.fit(ctx_for(handle)).values():
        assert torch.allclose(fit[0], torch.eye(32, dtype=torch.float64), atol=1e-6)


def test_the_fit_ignores_padding(registry):
    handle = handle_of(deep_llama(), registry)
    ids = calibration(samples=12, length=16)
    padded = torch.cat([ids, torch.full((12, 5), 1)], dim=1)  # right padding: the real tokens see no pad
    mask = torch.cat([torch.ones(12, 16, dtype=torch.long), torch.zeros(12, 5, dtype=torch.long)], dim=1)
    plain = LinearLS().fit(HealingContext(handle, REMOVED, ids))
    masked = LinearLS().fit(HealingContext(handle, REMOVED, padded, mask))
    for run in plain:
        assert plain[run][3] == masked[run][3] == 12 * 16
        assert torch.allclose(plain[run][0], masked[run][0], rtol=1e-3, atol=1e-4)  # float32 kernels differ by length


def test_healing_brings_the_residual_stream_closer_to_the_dense_one(registry):
    handle = handle_of(deep_llama(), registry)
    ids = calibration(samples=12, length=16)
    states = {}

    def after_block(model_handle, position):
        with torch.no_grad():
            return model_handle.model.base_model(input_ids=ids, output_hidden_states=True).hidden_states[position + 1]

    dense = after_block(handle, 3)  # after the last removed block of run [2, 4)
    with handle.temporarily_without(REMOVED) as pruned:
        states["unhealed"] = after_block(pruned, 1)
    record = LinearLS().heal(ctx_for(handle))
    with handle.temporarily_without(REMOVED) as pruned:
        states["healed"] = after_block(pruned, 1)
    assert record["runs"][0]["error_removed"] > 0
    assert (states["healed"] - dense).norm() < (states["unhealed"] - dense).norm()


def test_a_run_at_block_0_is_left_unhealed_and_said(registry):
    handle = handle_of(deep_llama(), registry)
    before = copy.deepcopy(handle.model.state_dict())
    record = LinearLS().heal(ctx_for(handle, removed=(0, 1)))
    assert record["runs"] == [{"run": [0, 1], "folded_into": None,
                               "note": "starts at block 0: no block before it to fold a patch into; left unhealed"}]
    assert all(torch.equal(v, handle.model.state_dict()[k]) for k, v in before.items())


def test_an_architecture_without_a_foldable_mlp_output_is_refused(registry):
    handle = handle_of(tiny_model("gemma3_text"), registry)
    with pytest.raises(DrtframeError, match="cannot heal gemma3_text"):
        LinearLS().heal(HealingContext(handle, (2,), calibration()))


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "gpt_neox", "qwen2", "phi3"])
def test_the_healed_model_saves_and_reloads_in_plain_transformers(model_type, registry, tmp_path):
    from drtframe.pruning.saving import save_pruned

    handle = handle_of(tiny_model(model_type), registry)
    LinearLS().heal(HealingContext(handle, (2, 3), calibration()))
    pruned = handle.without((2, 3))
    save_pruned(pruned, tmp_path / "healed", {}, overwrite=False)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "healed").eval()
    ids = calibration(samples=2, length=8, seed=5)
    with torch.no_grad():
        assert torch.equal(pruned.model(input_ids=ids).logits, reloaded(input_ids=ids).logits)
        cached = reloaded.generate(ids, max_new_tokens=6, do_sample=False, use_cache=True)
        uncached = reloaded.generate(ids, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


def test_prune_heals_records_and_saves(tiny_llama_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from conftest import WIKITEXT_HEAD
    from drtframe.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["prune", "-m", str(tiny_llama_dir), "--layers", "2,3", "--heal", "linear_ls",
                                      "--heal-option", "ridge=1e-3", "--calibration", str(WIKITEXT_HEAD),
                                      "--n-samples", "4", "--seq-len", "32", "--no-speed", "-O", str(out)])
    assert result.exit_code == 0, result.output
    assert "linear_ls: blocks 2-3 folded into 1" in result.output
    manifest = json.loads((out / "drtframe.json").read_text())
    assert manifest["healing"]["healer"] == "linear_ls" and manifest["healing"]["options"]["ridge"] == 1e-3
    assert manifest["healing"]["runs"][0]["tokens"] == 4 * 32 and manifest["calibration"]["n_samples"] == 4
    assert manifest["decision_guard"] is not None


@pytest.mark.parametrize("args, message", [
    (["prune", "--layers", "2", "--heal", "linear_lss", "-O", "OUT"], "did you mean 'linear_ls'"),
    (["eval", "-b", "arc_easy", "--heal", "linear_ls"], "give --remove-layers"),
    (["prune", "--layers", "2", "--heal", "linear_ls", "--heal-option", "rige=1", "-O", "OUT"], "did you mean 'ridge'"),
])
def test_bad_healing_input_is_one_line(args, message, tiny_llama_dir, tmp_path):
    from click.testing import CliRunner

    from drtframe.cli import cli

    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = CliRunner().invoke(cli, [args[0], "-m", str(tiny_llama_dir), *args[1:]])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists()
