"""`drtframe prune` end to end on a tiny saved model: output, manifest, reload, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from drtframe.cli import cli
from test_architectures import hand_pruned
from tiny_models import sample_ids


def prune(*args):
    return CliRunner().invoke(cli, ["prune", *map(str, args)])


def leftovers(parent):
    return [p.name for p in parent.iterdir() if ".partial-" in p.name]


def test_prune_writes_a_model_plain_transformers_reloads(tiny_llama_dir, tmp_path):
    out = tmp_path / "pruned"
    result = prune("--model", tiny_llama_dir, "--method", "reverse_order", "--remove", 2, "--output", out)
    assert result.exit_code == 0, result.output
    assert "3, 4" in result.output and "5 -> 3" in result.output and "ideal" in result.output

    manifest = json.loads((out / "drtframe.json").read_text())
    assert manifest["removed_layers"] == [3, 4]
    assert manifest["method"] == "reverse_order@one_shot"
    assert manifest["source_model"] == str(tiny_llama_dir)
    assert (manifest["num_layers_before"], manifest["num_layers_after"]) == (5, 3)
    assert manifest["drtframe_version"]

    reference = hand_pruned(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), (3, 4))
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    with torch.inference_mode():
        assert torch.equal(reloaded(sample_ids()).logits, reference(sample_ids()).logits)


def test_pruned_dir_loads_without_drtframe(tiny_llama_dir, tmp_path):
    out = tmp_path / "pruned"
    assert prune("-m", tiny_llama_dir, "--layers", "0,2", "-O", out, "--no-speed").exit_code == 0
    code = (
        "import sys\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=False)\n"
        f"t = AutoTokenizer.from_pretrained({str(out)!r})\n"
        "assert m.config.num_hidden_layers == 3 and len(m.model.layers) == 3\n"
        "assert t('w1 w2')['input_ids'] == [3, 4]\n"
        "assert not any(n.startswith('drtframe') for n in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "drtframe.json").read_text())["method"] == "manual"


def test_random_is_seeded(tiny_llama_dir, tmp_path):
    def removed(seed, name):
        out = tmp_path / name
        assert prune("-m", tiny_llama_dir, "--method", "random", "-k", 2, "-o", f"seed={seed}", "-O", out,
                     "--no-speed").exit_code == 0
        return json.loads((out / "drtframe.json").read_text())["removed_layers"]

    assert removed(3, "a") == removed(3, "b")
    assert len({tuple(removed(s, f"s{s}")) for s in range(6)}) > 1


@pytest.mark.parametrize("args, message", [
    (["--method", "reverse_order", "--remove", "0"], "at least 1"),
    (["--method", "reverse_order", "--remove", "5"], "leaves no layers"),
    (["--layers", "1,9"], "layer 9 is out of range"),
    (["--layers", "1,1"], "listed more than once"),
    (["--layers", "one"], "comma-separated"),
    (["--method", "revers_order", "--remove", "2"], "did you mean 'reverse_order'"),
    (["--method", "reverse_order"], "--remove"),
    (["--method", "random", "-k", "1", "-o", "sed=1"], "did you mean 'seed'"),
    ([], "either --method"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(args, message, tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    result = prune("-m", tiny_llama_dir, *args, "-O", out, "--no-speed")
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists() and leftovers(tmp_path) == []


def test_missing_model_is_refused(tmp_path):
    result = prune("-m", tmp_path / "nowhere", "--layers", "1", "-O", tmp_path / "out")
    assert result.exit_code == 2 and "model not found" in result.output
    result = prune("-m", tmp_path / "nothing.gguf", "--layers", "1", "-O", tmp_path / "out")
    assert result.exit_code == 2 and "model not found" in result.output


def test_non_empty_output_needs_overwrite(tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = prune("-m", tiny_llama_dir, "--layers", "1", "-O", out, "--no-speed")
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    result = prune("-m", tiny_llama_dir, "--layers", "1", "-O", out, "--no-speed", "--overwrite")
    assert result.exit_code == 0
    assert not (out / "keep.txt").exists() and (out / "drtframe.json").exists()


def test_interrupted_write_leaves_no_half_written_model(tiny_llama_dir, tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerFast

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", interrupted)
    out = tmp_path / "out"
    result = prune("-m", tiny_llama_dir, "--layers", "1", "-O", out, "--no-speed")
    assert result.exit_code == 130 and "Interrupted" in result.output
    assert not out.exists() and leftovers(tmp_path) == []
