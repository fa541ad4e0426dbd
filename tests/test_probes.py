"""Decision probes: the lens against a direct computation, the metrics against their definitions,
the transition rule, and `drtframe probe` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from drtframe.cli import cli
from drtframe.evaluation.loglikelihood import loglikelihoods
from drtframe.evaluation.tokenize import encode_pair
from drtframe.models.architecture import find_architecture
from drtframe.models.handle import ModelHandle
from drtframe.probing.lens import layer_scores
from drtframe.probing.profile import change_point, decision_profile
from test_eval_cli import yaml_task  # noqa: F401  (fixture)
from test_loglikelihood import items
from tiny_models import LAYERS, tiny_model, tiny_tokenizer


def handle_for(model_type, registry):
    model = tiny_model(model_type)
    return ModelHandle(model, tiny_tokenizer(), "tiny", find_architecture(registry, model.config.model_type), LAYERS)


def direct_lens(model, tokenizer, context, continuation):
    """Per layer: norm_f and the output embedding applied to that layer's hidden states, by hand."""
    pair = encode_pair(tokenizer, context, continuation)
    ids = torch.tensor([pair.context + pair.continuation])
    with torch.inference_mode():
        out = model(ids, output_hidden_states=True)
    n = len(pair.continuation)
    positions = list(range(ids.shape[1] - n - 1, ids.shape[1] - 1))
    norm, head = model.model.norm, model.lm_head
    result = []
    for layer, hidden in enumerate(out.hidden_states[1:]):
        logits = out.logits[0] if layer == LAYERS - 1 else head(norm(hidden[0]))
        logprobs = F.log_softmax(logits.float(), dim=-1)
        result.append(sum(logprobs[p, t].item() for p, t in zip(positions, pair.continuation)))
    return result


@pytest.mark.parametrize("exact, tolerance", [(True, 1e-4), (False, 2e-3)], ids=["exact", "bfloat16-normaliser"])
def test_lens_matches_direct_computation(exact, tolerance, registry):
    handle = handle_for("llama", registry)
    for item, scores in zip(items(), layer_scores(handle, items(), budget=64, exact=exact)):
        assert scores.shape == (item.num_choices, LAYERS)
        for choice, (c, k) in enumerate(zip(item.contexts, item.continuations)):
            direct = direct_lens(handle.model, handle.tokenizer, c, k)
            assert scores[choice].tolist() == pytest.approx(direct, abs=tolerance)
            assert scores[choice, -1].item() == pytest.approx(direct[-1], abs=1e-4)  # the last layer is exact


@pytest.mark.parametrize("model_type", ["gemma3_text", "gpt2", "opt"])
def test_lens_runs_on_other_architectures(model_type, registry):
    handle = handle_for(model_type, registry)
    scores = layer_scores(handle, items())
    assert all(s.shape == (i.num_choices, LAYERS) and torch.isfinite(s).all() for s, i in zip(scores, items()))


def test_last_layer_equals_evaluation_exactly(registry):
    handle = handle_for("llama", registry)
    lens = layer_scores(handle, items())
    evaluated = loglikelihoods(handle, items())
    for scores, lls in zip(lens, evaluated):
        assert scores[:, -1].tolist() == lls


def test_profile_metrics_follow_their_definitions():
    # 3 items, 2 layers, 3 choices; scores chosen so softmax gives known probabilities
    p = [np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]), np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1]]),
         np.array([[0.5, 0.25, 0.25], [0.3, 0.3, 0.4]])]
    scores = [torch.tensor(np.log(x).T) for x in p]
    gold = [0, 0, 2]
    profile = decision_profile(scores, gold)
    assert profile.acc == pytest.approx((1 / 3, 2 / 3))
    margins_l0 = [0.6 - 0.3, 0.1 - 0.8, 0.25 - 0.5]
    assert profile.decision_margin[0] == pytest.approx(np.mean(margins_l0))
    assert profile.option_frequency[0] == pytest.approx((2 / 3, 0, 1 / 3))
    assert profile.entropy[0] == pytest.approx(-(2 / 3 * np.log2(2 / 3) + 1 / 3 * np.log2(1 / 3)))


def synthetic(decide_from: int, layers: int = 12, n: int = 200, seed: int = 0):
    """Items whose lens answers a fixed option before `decide_from` and the gold from there on."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 4, n).tolist()
    scores = []
    for g in gold:
        s = np.zeros((4, layers))
        s[0, :decide_from] = 2.0  # the Silent Phase piles onto option A
        s[g, decide_from:] = 3.0
        scores.append(torch.tensor(s))
    return scores, gold


def test_transition_is_found_with_an_interval():
    scores, gold = synthetic(decide_from=7)
    profile = decision_profile(scores, gold)
    assert profile.transition.layer == 7
    assert profile.transition.interval == (7, 7)
    assert profile.silent_phase == list(range(7)) and profile.decisive_phase == list(range(7, 12))
    assert profile.option_frequency[0][0] == 1.0 and profile.entropy[0] == 0.0


def test_one_dipping_layer_does_not_move_the_transition():
    """A late layer below the halfway mark used to push l* past it; the least-squares step does not move."""
    acc = np.array([0.3] * 20 + [0.7, 0.7, 0.45, 0.7, 0.7])
    assert change_point(acc) == 20
    assert change_point(np.array([0.3] * 20 + [0.45, 0.7, 0.7, 0.7, 0.7])) in (20, 21)
    assert change_point(np.array([0.6, 0.5, 0.4])) == 0  # never rises: decided from the first layer
    assert change_point(np.full(30, 0.62)) == 0  # flat: rounding in the means must not fake a rise


def transition_one_resample_at_a_time(correct, gold, options):
    """l* (-1: none) of one (items, layers) correctness matrix, as profile.py's docstring states the rule."""
    acc = correct.mean(axis=0)
    baseline = max(np.mean(gold == o) for o in range(options))
    if acc[-1] - baseline <= 2 * np.sqrt(max(acc[-1] * (1 - acc[-1]), 1e-12) / max(len(gold) - 1, 1)):
        return -1
    # the least-squares two-level step among rising splits (the first best), on one curve at a time
    n, t = len(acc), np.arange(1, len(acc))
    head, total = np.cumsum(acc)[:-1], acc.sum()
    before, after = head / t, (total - head) / (n - t)
    fit, rising = t * before ** 2 + (n - t) * after ** 2, after - before > 1e-9
    return int(t[rising][np.argmax(fit[rising])]) if rising.any() else 0


def test_the_bootstrap_taken_in_one_pass_equals_one_resample_at_a_time(monkeypatch):
    import drtframe.probing.profile as profile

    rng = np.random.default_rng(3)
    generator = torch.Generator().manual_seed(3)
    for case in range(12):
        n, layers, options = int(rng.integers(10, 80)), int(rng.integers(1, 25)), int(rng.integers(2, 5))
        gold = np.array([int(g) for g in rng.integers(0, options, n)])
        rise = torch.linspace(0, 1, layers) ** 4 * float(rng.uniform(0.5, 3))
        scores = [torch.randn(options, layers, generator=generator) + rise * (torch.arange(options) == g)[:, None]
                  for g in gold]
        top = np.stack([s.T.argmax(axis=1).numpy() for s in scores])
        correct = top == gold[:, None]
        picks = rng.integers(0, n, (200, n))
        stacked, _ = profile._transition_layers(correct[picks], gold[picks], options)
        assert stacked.tolist() == [transition_one_resample_at_a_time(correct[p], gold[p], options) for p in picks]
        # resamples judged a few at a time (to bound memory) give the same interval as all at once
        whole = decision_profile(scores, gold.tolist()).transition
        monkeypatch.setattr(profile, "BOOTSTRAP_CELLS", 7 * correct.size)
        assert decision_profile(scores, gold.tolist()).transition == whole, case
        monkeypatch.undo()


def test_transition_reports_the_phase_levels():
    scores, gold = synthetic(decide_from=7)
    silent, decisive = decision_profile(scores, gold).transition.levels
    assert decisive == 1.0 and silent == pytest.approx(np.mean(np.array(gold) == 0))


def test_no_transition_when_the_model_never_decides():
    scores, gold = synthetic(decide_from=12)
    profile = decision_profile(scores, gold)
    assert profile.transition.layer is None and profile.decisive_phase == []


def test_probe_command_writes_profile_and_plot(tiny_llama_dir, yaml_task, tmp_path):  # noqa: F811
    out, plot = tmp_path / "p.json", tmp_path / "p.png"
    result = CliRunner().invoke(cli, ["probe", "-m", str(tiny_llama_dir), "-b", str(yaml_task), "-O", str(out),
                                      "--plot", str(plot), "--probes", "decision_margin,option_frequency,noise_sensitivity",
                                      "--trace", "2", "--method", "reverse_order"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert len(report["layers"]) == LAYERS
    assert {"acc", "decision_margin", "option_frequency", "entropy", "noise_drop"} <= set(report["layers"][0])
    assert "transition_layer" in report and "silent_phase" in report and "decisive_phase" in report
    assert [s["removed"] for s in report["trace"]] == [[], [4], [4, 3]]
    assert plot.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "p-trace.png").exists()


def test_noise_of_zero_changes_nothing(tiny_llama_dir, yaml_task, tmp_path):  # noqa: F811
    out = tmp_path / "p.json"
    result = CliRunner().invoke(cli, ["probe", "-m", str(tiny_llama_dir), "-b", str(yaml_task), "-O", str(out),
                                      "--probes", "noise_sensitivity", "-p", "eps=0"])
    assert result.exit_code == 0, result.output
    assert all(row["noise_drop"] == 0 for row in json.loads(out.read_text())["layers"])
    bad = CliRunner().invoke(cli, ["probe", "-m", str(tiny_llama_dir), "-b", str(yaml_task), "-p", "epz=1",
                                   "--probes", "noise_sensitivity"])
    assert bad.exit_code == 2 and "did you mean 'eps'" in bad.output


def test_lens_follows_blocks_removed_in_place(registry):
    """transformers attaches its own hidden-state recording once; the lens must see the blocks present now."""
    handle = handle_for("llama", registry)
    for removed in [(1, 2), (3,), (), (0, 1, 2)]:
        with handle.temporarily_without(removed) as pruned:
            scores = layer_scores(pruned, items())
            assert all(s.shape[1] == LAYERS - len(removed) for s in scores)
            assert [s[:, -1].tolist() for s in scores] == loglikelihoods(pruned, items())


def test_float32_lens_tiles_change_nothing(registry, monkeypatch):
    import drtframe.forward.output_head as output_head

    handle = handle_for("llama", registry)
    whole = layer_scores(handle, items(), exact=True)
    monkeypatch.setattr(output_head, "HEAD_ROWS", 3)
    monkeypatch.setattr(output_head, "HEAD_COLUMNS", 7)
    tiled = layer_scores(handle, items(), exact=True)
    for a, b in zip(whole, tiled):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text"])
def test_relative_lens_scores_differ_from_log_probabilities_by_one_constant_per_item_and_layer(model_type, registry):
    from drtframe.evaluation.loglikelihood import choice_scores
    from drtframe.probing.lens import lens_profile, lens_readout

    handle = handle_for(model_type, registry)
    shared = [item for item in items() if len(set(item.contexts)) == 1]  # one-token and longer choices
    absolute = layer_scores(handle, shared)
    relative = choice_scores(handle, shared, lens_readout(handle, relative=True), hidden=True)
    for a, r in zip(absolute, relative):
        offset = r - a
        assert (offset - offset[0]).abs().max() < 2e-3  # the bfloat16 normaliser's rounding
        assert offset[:, :-1].abs().max() > 1  # the normaliser really is left out before the last layer
        assert offset[:, -1].abs().max() == 0  # the last layer is the model's own output
    for subset in (shared, items()):  # items() has one whose choices vary the context: no shortcut there
        expected = decision_profile(layer_scores(handle, subset), [item.gold for item in subset])
        got = lens_profile(handle, subset)
        assert got.acc == expected.acc
        assert got.decision_margin == pytest.approx(expected.decision_margin, abs=1e-3)
