"""The tuned lens: its readout against a direct computation, its fit, the original numbering after a
removal, its cache, and the commands that use it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from drtframe.cli import cli
from drtframe.errors import DrtframeError
from drtframe.evaluation.loglikelihood import choice_scores
from drtframe.evaluation.tokenize import encode_pair
from drtframe.probing import tuned_lens as tl
from drtframe.probing.lens import layer_scores, lens_readout
from test_eval_cli import yaml_task  # noqa: F401  (fixture)
from test_loglikelihood import items
from test_probes import handle_for
from tiny_models import LAYERS

HIDDEN = 32


def random_lens(seed: int = 0) -> tl.TunedLens:
    generator = torch.Generator().manual_seed(seed)
    return tl.TunedLens(0.3 * torch.randn(LAYERS - 1, HIDDEN, HIDDEN, generator=generator),
                        0.3 * torch.randn(LAYERS - 1, HIDDEN, generator=generator))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRTFRAME_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tuned_readout_matches_direct_computation(registry):
    """Block l is read as head(norm(h + h A_l + b_l)); the last block is the model's own output."""
    handle = handle_for("llama", registry)
    lens = random_lens()
    scores = choice_scores(handle, items(), lens_readout(handle, exact=True, tuned=lens), hidden=True)
    norm, head = handle.model.model.norm, handle.model.lm_head
    for item, got in zip(items(), scores):
        for choice, (context, continuation) in enumerate(zip(item.contexts, item.continuations)):
            pair = encode_pair(handle.tokenizer, context, continuation)
            ids = torch.tensor([pair.context + pair.continuation])
            with torch.inference_mode():
                out = handle.model(ids, output_hidden_states=True)
            n = len(pair.continuation)
            positions = range(ids.shape[1] - n - 1, ids.shape[1] - 1)
            for layer, hidden in enumerate(out.hidden_states[1:]):
                if layer == LAYERS - 1:
                    logits = out.logits[0]
                else:
                    h = hidden[0]
                    logits = head(norm(h + h @ lens.weight[layer] + lens.bias[layer]))
                logprobs = F.log_softmax(logits.float(), -1)
                direct = sum(logprobs[p, t].item() for p, t in zip(positions, pair.continuation))
                assert got[choice, layer].item() == pytest.approx(direct, abs=1e-4)


def test_a_zero_lens_is_the_logit_lens(registry):
    handle = handle_for("llama", registry)
    zero = tl.TunedLens(torch.zeros(LAYERS - 1, HIDDEN, HIDDEN), torch.zeros(LAYERS - 1, HIDDEN))
    plain = layer_scores(handle, items(), exact=True)
    tuned = choice_scores(handle, items(), lens_readout(handle, exact=True, tuned=zero), hidden=True)
    for a, b in zip(plain, tuned):
        assert torch.equal(a, b)


def test_a_pruned_model_reads_each_kept_block_with_its_original_translator(registry):
    """Removing block 1 puts original block 2 at position 1: it must be read with translator 2."""
    handle = handle_for("llama", registry)
    lens = random_lens(1)
    with handle.temporarily_without((1,)) as pruned:
        got = choice_scores(pruned, items(), lens_readout(pruned, exact=True, tuned=lens), hidden=True)
        kept = list(pruned.kept[:-1])  # original 0, 2, 3: the blocks read through translators
        renumbered = replace(pruned, removed=(), original_num_layers=pruned.num_layers)
        by_position = tl.TunedLens(lens.weight[kept], lens.bias[kept])
        expected = choice_scores(renumbered, items(), lens_readout(renumbered, exact=True, tuned=by_position),
                                 hidden=True)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_fit_reads_the_model_better_than_the_logit_lens(registry):
    from drtframe.scoring.calibration import CalibrationSpec, calibration_tokens
    from conftest import WIKITEXT_HEAD

    handle = handle_for("llama", registry)
    tokens = calibration_tokens(CalibrationSpec(str(WIKITEXT_HEAD), 12, 32), handle.tokenizer)
    lens = tl.fit_tuned_lens(handle, tokens, steps=5, held_out=4)
    report = lens.report
    assert lens.weight.shape == (LAYERS - 1, HIDDEN, HIDDEN) and lens.bias.shape == (LAYERS - 1, HIDDEN)
    assert len(report["logit_kl"]) == len(report["tuned_kl"]) == LAYERS - 1
    assert report["held_out_tokens"] == 4 * 31 and report["train_tokens"] == 8 * 31
    assert all(t <= logit for t, logit in zip(report["tuned_kl"], report["logit_kl"]))
    assert sum(report["tuned_kl"]) < 0.8 * sum(report["logit_kl"])
    assert not any(p.grad is not None for p in handle.model.parameters())  # the model itself is not trained
    assert all(p.requires_grad for p in handle.model.parameters())  # and is left as it was


def test_lens_is_fitted_once_cached_and_refused_for_an_already_pruned_model(registry, cache, monkeypatch):
    monkeypatch.setattr(tl, "STEPS", 2)
    monkeypatch.setattr(tl, "TRAINING_TEXT", replace(tl.TRAINING_TEXT, n_samples=6, seq_len=16))
    monkeypatch.setattr(tl, "HELD_OUT", 2)
    handle = handle_for("llama", registry)
    first = tl.tuned_lens_for(handle)
    assert list((cache / "lenses").glob("*.safetensors"))
    with handle.temporarily_without((2,)) as pruned:
        assert tl.tuned_lens_for(pruned) is first  # the dense model's lens, reused after removal
    again = tl.tuned_lens_for(handle_for("llama", registry))  # a fresh load of the same weights: from disk
    assert torch.equal(again.weight, first.weight) and again.report == first.report
    other = handle_for("llama", registry)
    with other.temporarily_without((2,)) as pruned, pytest.raises(DrtframeError, match="dense model"):
        tl.tuned_lens_for(pruned)


def test_probe_and_lens_commands_with_the_tuned_readout(tiny_llama_dir, yaml_task, tmp_path, cache,  # noqa: F811
                                                      monkeypatch):
    monkeypatch.setattr(tl, "STEPS", 2)
    monkeypatch.setattr(tl, "TRAINING_TEXT", replace(tl.TRAINING_TEXT, n_samples=6, seq_len=16))
    monkeypatch.setattr(tl, "HELD_OUT", 2)
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(cli, ["probe", "-m", str(tiny_llama_dir), "-b", str(yaml_task), "-O", str(out),
                                      "--readout", "tuned"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["readout"] == "tuned" and len(report["tuned_lens"]["tuned_kl"]) == LAYERS - 1
    assert "tuned lens" in result.output
    shown = CliRunner().invoke(cli, ["lens", "-m", str(tiny_llama_dir), "--plot", str(tmp_path / "lens.png")])
    assert shown.exit_code == 0, shown.output
    assert "logit lens" in shown.output and (tmp_path / "lens.png").stat().st_size > 0
    assert len(list((cache / "lenses").glob("*.safetensors"))) == 1  # fitted once, by the probe
    bad = CliRunner().invoke(cli, ["probe", "-m", str(tiny_llama_dir), "-b", str(yaml_task), "--readout", "tunde"])
    assert bad.exit_code == 2 and "tunde" in bad.output


def test_decision_guided_finds_its_phases_through_the_chosen_readout(tiny_llama_dir, decided_task, registry, cache,
                                                                   monkeypatch):
    """`--readout tuned` reaches the decisive_phase schedule's option, and the phases then come from the
    tuned lens; `decision` (iterative, last layer only) has no readout and keeps its plan keys."""
    from drtframe.models.loading import ModelSpec, load_model
    from drtframe.scoring.methods import resolve_method
    from drtframe.scoring.scorer import ScoringContext

    monkeypatch.setattr(tl, "STEPS", 2)
    monkeypatch.setattr(tl, "TRAINING_TEXT", replace(tl.TRAINING_TEXT, n_samples=6, seq_len=16))
    monkeypatch.setattr(tl, "HELD_OUT", 2)
    options = {"benchmark": str(decided_task), "eval_items": "0", "calib_items": "40"}
    method = resolve_method(registry, "decision_guided", options, readout="tuned")
    assert method.schedule.options.readout == "tuned"
    assert resolve_method(registry, "decision_guided", {**options, "readout": "logit"}, "tuned").schedule.options \
        .readout == "logit"  # an explicit option wins
    plain = resolve_method(registry, "decision", options, readout="tuned")
    assert not hasattr(plain.scorer.options, "readout") and not hasattr(plain.schedule.options, "readout")
    handle = load_model(ModelSpec(str(tiny_llama_dir)), registry)
    profile = method.scorer.profile(ScoringContext(handle, None, 8), method.schedule.options.readout)
    items = method.scorer.items()
    expected = layer_scores(handle, items, readout="tuned")
    from drtframe.probing.profile import decision_profile

    expected = decision_profile(expected, [i.gold for i in items])
    assert (profile.acc, profile.transition) == (expected.acc, expected.transition)
    assert profile.decision_margin == pytest.approx(expected.decision_margin, abs=1e-6)  # first-token normalisers


@pytest.mark.parametrize("replay", [True, False], ids=["replayed", "whole"])
def test_compare_reads_every_variant_through_its_own_kept_translators(replay, registry):
    """compare's per-layer scores of a pruned variant, replayed or run whole, equal that pruned model's own
    tuned-lens scores (a readout built once for the dense model would pick translators 0, 1, 2...)."""
    from drtframe.comparison.variants import variant_scores

    handle = handle_for("llama", registry)
    monkey = pytest.MonkeyPatch()
    monkey.setitem(tl._ATTACHED, handle.model, random_lens(2))
    try:
        variants = [(), (1,), (0, 2), (3,)]
        got = dict(variant_scores(handle, items(), variants, per_layer=True, replay=replay, readout="tuned"))
        for variant in variants:
            with handle.temporarily_without(variant) as pruned:
                own = layer_scores(pruned, items(), readout="tuned")
            for a, b in zip(got[variant], own):
                assert torch.allclose(a, b, atol=1e-4), variant
    finally:
        monkey.undo()
