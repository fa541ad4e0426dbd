"""The real SmolLM2-135M: alias conversion, pruning that reloads exactly, cache-consistent generation."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM, AutoTokenizer

from drtframe.cli import cli
from drtframe.models.architecture import find_architecture
from drtframe.models.handle import ModelHandle
from drtframe.pruning.saving import save_pruned
from test_architectures import hand_pruned

pytestmark = pytest.mark.slow
REMOVED = (4, 11, 12, 27)


@pytest.fixture(scope="module")
def tokens(smollm2_dir):
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    return tok("Question: Which gas do plants take in for photosynthesis?\nAnswer:", return_tensors="pt").input_ids


def logits(model, ids):
    with torch.inference_mode():
        return model(ids).logits


def test_alias_is_converted_once_and_listed(smollm2_dir):
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["num_hidden_layers"] == 30 and config["model_type"] == "llama"
    assert "quantization_config" not in config
    assert "yes" in CliRunner().invoke(cli, ["models"]).output


def test_pruned_smollm2_matches_hand_deleted_and_its_reload(smollm2_dir, tokens, registry, tmp_path, transformers_log):
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    reference = hand_pruned(model, REMOVED)
    handle = ModelHandle(model, AutoTokenizer.from_pretrained(smollm2_dir), "smollm2-135m",
                         find_architecture(registry, "llama"), 30)
    pruned = handle.without(REMOVED)
    assert torch.equal(logits(pruned.model, tokens), logits(reference, tokens))

    save_pruned(pruned, tmp_path / "out", {"removed_layers": list(REMOVED)}, overwrite=False)
    transformers_log.truncate(0)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert "MISSING" not in transformers_log.getvalue() and "newly initialized" not in transformers_log.getvalue()
    assert torch.equal(logits(reloaded, tokens), logits(pruned.model, tokens))

    greedy = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=0)
    with torch.inference_mode():
        assert torch.equal(reloaded.generate(tokens, use_cache=True, **greedy),
                           reloaded.generate(tokens, use_cache=False, **greedy))


def test_prune_command_on_the_alias_reports_speed_and_keeps_the_transition(smollm2_dir, tmp_path):
    """Middle blocks go: the default guard (packaged ARC-Easy sample) finds the decision still made."""
    out = tmp_path / "pruned"
    result = CliRunner().invoke(cli, ["prune", "-m", "smollm2-135m", "--layers", "12,13,14,15,16,17", "-O", str(out)])
    assert result.exit_code == 0, result.output
    assert "30 -> 24" in result.output and "1.25x ideal" in result.output and "tokens/s" in result.output
    assert "kept: l* 29 -> " in " ".join(result.output.split())
    manifest = json.loads((out / "drtframe.json").read_text())
    assert manifest["removed_layers"] == [12, 13, 14, 15, 16, 17]
    guard = manifest["decision_guard"]
    assert guard["dense"]["transition_layer"] == 29 and guard["pruned"]["transition_layer"] is not None
    assert guard["dense_acc"] == 0.62 and guard["items"]["first_item"] == 470


def test_the_guard_refuses_removing_the_last_blocks(smollm2_dir, tmp_path):
    """reverse_order takes blocks 24-29, where SmolLM2's decision is made: exit 3, nothing written."""
    out = tmp_path / "pruned"
    result = CliRunner().invoke(cli, ["prune", "-m", "smollm2-135m", "--method", "reverse_order", "-k", "6",
                                      "--no-speed", "-O", str(out)])
    assert result.exit_code == 3, result.output
    message = " ".join(result.output.split())
    assert "the pruned model has no decision transition on arc_easy validation items 470-569" in message
    assert re.search(r"\(dense l\* = 29; accuracy 0\.62 -> 0\.30 against the best constant answer's 0\.\d\d, which "
                     r"the pruned model does not beat by two standard errors\); removed Silent-Phase blocks 24, 25, "
                     r"26, 27, 28; nothing written", message), message
    assert not out.exists()


def test_a_gguf_file_prunes_like_its_alias(smollm2_dir, tokens, tmp_path):
    from drtframe.models.aliases import ALIASES, fetch_gguf

    gguf = fetch_gguf(ALIASES["smollm2-135m"], tmp_path / "dl")
    for source, name in ((gguf, "from_gguf"), ("smollm2-135m", "from_alias")):
        result = CliRunner().invoke(cli, ["prune", "-m", str(source), "--layers", "29", "--no-speed", "--no-guard",
                                          "-O", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "from_gguf")
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "from_alias")
    assert torch.equal(logits(a, tokens), logits(b, tokens))


def test_the_wikitext_sample_gives_the_default_chunks_of_the_whole_text(smollm2_dir):
    """The packaged head of WikiText-2 (128 KiB) cuts the same default 64 x 256 chunks as a longer text
    (the test slice, 160 KiB of the same split): the cut at its end changes none of them."""
    from conftest import WIKITEXT_HEAD as whole
    from drtframe.scoring.calibration import CalibrationSpec, calibration_tokens, chunk_tokens

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    spec = CalibrationSpec("wikitext2-sample").sized()  # the default 64 x 256
    sample = calibration_tokens(spec, tok)
    assert torch.equal(sample, chunk_tokens(tok, whole.read_text(encoding="utf-8"), spec.n_samples, spec.seq_len))


def test_resumed_candidates_equal_the_evaluator_without_the_block(smollm2_dir, registry):
    """Replaying recorded block inputs through the blocks after p (context pass, then continuation
    passes against its KV cache) scores exactly what the evaluator scores on the model without p."""
    from drtframe.evaluation.loglikelihood import choice_scores, choice_scores_without
    from drtframe.models.loading import ModelSpec, load_model
    from drtframe.scoring.calibration_items import ItemWindow

    handle = load_model(ModelSpec(str(smollm2_dir)), registry)
    items = ItemWindow.sample(6).load(registry)[0]
    positions = [0, 14, 28, 29]
    resumed = choice_scores_without(handle, items, positions, budget=64)  # several batches and groups
    for p in positions:
        with handle.temporarily_without((p,)) as pruned:
            reference = [s[:, 0] for s in choice_scores(pruned, items, budget=64)]
        for got, want in zip(resumed[p], reference):
            assert torch.allclose(got, want, atol=1e-5), (p, got, want)


def test_compare_replay_equals_the_saved_and_reloaded_pruned_smollm2(smollm2_dir, registry, tmp_path):
    """A compare cell replayed from the dense model's recorded block inputs scores what the pruned
    model, saved and reloaded, scores (non-contiguous removals, and removals ending at the last block);
    the lens profile's replay equals the pruned model's own lens."""
    from drtframe.comparison.cells import load_benchmark
    from drtframe.comparison.request import SAMPLE_EVAL_DIR
    from drtframe.comparison.variants import variant_scores
    from drtframe.evaluation.loglikelihood import loglikelihoods
    from drtframe.models.loading import ModelSpec, load_model

    handle = load_model(ModelSpec(str(smollm2_dir)), registry)
    items = load_benchmark(registry, "arc_easy", "validation", None, 8, SAMPLE_EVAL_DIR).items
    variants = [(5, 17, 25), (26, 27, 28, 29)]
    replayed = dict(variant_scores(handle, items, variants, budget=256))
    for variant in variants:
        with handle.temporarily_without(variant) as pruned:
            save_pruned(pruned, tmp_path / str(variant[0]), {}, overwrite=False)
        reloaded = load_model(ModelSpec(str(tmp_path / str(variant[0]))), registry)
        for got, want in zip(replayed[variant], loglikelihoods(reloaded, items)):
            assert torch.allclose(got[:, 0], torch.tensor(want), atol=1e-5), (variant, got, want)
    lens = dict(variant_scores(handle, items, [(5, 17, 25)], per_layer=True))
    whole = dict(variant_scores(handle, items, [(5, 17, 25)], per_layer=True, replay=False))
    for item, got, want in zip(items, lens[(5, 17, 25)], whole[(5, 17, 25)]):
        assert got.shape == (item.num_choices, 27) and torch.allclose(got, want, atol=1e-5)
