"""`drtframe score` end to end on a tiny saved model, and calibration passed through `drtframe prune`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from drtframe.cli import cli
from test_calibration import words

CALIBRATION = ["--n-samples", "4", "--seq-len", "8"]


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "calibration.txt"
    path.write_text(words(90) + "\n")
    return path


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def score(model_dir, tmp_path, *args):
    out = tmp_path / "scores.json"
    result = run("score", "-m", model_dir, *args, "-O", out)
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())


def test_score_prints_a_table_and_writes_scores_and_order(tiny_llama_dir, tmp_path, text):
    output, data = score(tiny_llama_dir, tmp_path, "--method", "block_influence", "--calibration", text, *CALIBRATION)
    assert data["method"] == "block_influence@one_shot"
    assert data["calibration"] == {"source": str(text), "n_samples": 4, "seq_len": 8}
    assert len(data["scores"]) == data["num_layers"] == 5
    assert data["order"] == sorted(range(5), key=lambda i: data["scores"][i])[:4]  # all layers but one
    assert "removal order: " + ", ".join(map(str, data["order"])) in output
    assert "block_influence@one_shot" in output and "#1" in output


def test_both_method_forms_are_accepted(tiny_llama_dir, tmp_path, text):
    _, iterative = score(tiny_llama_dir, tmp_path, "--method", "perplexity", "--calibration", text, *CALIBRATION, "-k", "2")
    _, one_shot = score(tiny_llama_dir, tmp_path, "--method", "perplexity@one_shot", "--calibration", text, *CALIBRATION)
    assert (iterative["method"], one_shot["method"]) == ("perplexity@iterative", "perplexity@one_shot")
    assert iterative["scores"] == one_shot["scores"]  # the iterative schedule reports its first round
    assert len(iterative["order"]) == 2 and iterative["order"][0] == one_shot["order"][0]


@pytest.mark.parametrize("args, removed", [([], 1), (["-o", "n=2"], 2), (["-k", "3"], 3)])
def test_angular_distance_removes_one_run(args, removed, tiny_llama_dir, tmp_path, text):
    _, data = score(tiny_llama_dir, tmp_path, "--method", "angular_distance", "--calibration", text, *CALIBRATION, *args)
    assert data["method"] == "angular_distance@contiguous"
    start = data["order"][0]
    assert data["order"] == list(range(start, start + removed))
    runs = [s for s in data["scores"] if s is not None]
    assert len(runs) == 5 - removed + 1 and runs[start] == min(runs)


def test_scorers_without_data_ignore_calibration(tiny_llama_dir, tmp_path):
    _, data = score(tiny_llama_dir, tmp_path, "--method", "reverse_order", "--calibration", "/no/such/file")
    assert data["order"] == [4, 3, 2, 1] and data["calibration"] is None


@pytest.mark.parametrize("args, message", [
    (["--method", "block_influence", "--calibration", "/no/such/file"], "calibration text not found"),
    (["--method", "block_influence", "--n-samples", "40"], "lower --n-samples or --seq-len"),
    (["--method", "block_influence", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--method", "block_infuence"], "did you mean 'block_influence'"),
    (["--method", "block_influence@iterativ"], "did you mean 'iterative'"),
    (["--method", "reverse_order", "-k", "5"], "leaves no layers"),
    (["--method", "angular_distance", "-o", "n=2", "-k", "3"], "n=2 but the schedule removes 3"),
])
def test_bad_input_is_one_line_exit_2(args, message, tiny_llama_dir, text):
    result = run("score", "-m", tiny_llama_dir, "--calibration", text, *CALIBRATION, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_wikitext2_is_the_default_source(tiny_llama_dir, tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append(args)
        return {"text": ["", " " + words(90) + " \n"]}

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    _, data = score(tiny_llama_dir, tmp_path, "--method", "block_influence", *CALIBRATION)
    assert calls == [("Salesforce/wikitext", "wikitext-2-raw-v1")]
    assert data["calibration"]["source"] == "wikitext2"


def test_prune_passes_calibration_to_scorers_that_read_data(tiny_llama_dir, tmp_path, text):
    _, scores = score(tiny_llama_dir, tmp_path, "--method", "block_influence", "--calibration", text, *CALIBRATION)
    out = tmp_path / "pruned"
    result = run("prune", "-m", tiny_llama_dir, "--method", "block_influence", "-k", 2, "--calibration", text,
                 *CALIBRATION, "-O", out, "--no-speed")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "drtframe.json").read_text())
    assert manifest["removed_layers"] == sorted(scores["order"][:2])
    assert manifest["removal_order"] == scores["order"][:2]
    assert manifest["calibration"] == {"source": str(text), "n_samples": 4, "seq_len": 8}


def test_sizes_left_open_come_from_the_scorer(tiny_llama_dir, tmp_path, monkeypatch):
    """A scorer that asks for its own calibration size (here perplexity, told to) gets it, block_influence
    takes 64 x 256; what the user gives wins; records and prune manifests say what was used."""
    from drtframe.plugin_system.manager import load_registry
    from drtframe.scoring.calibration import DEFAULT_SIZE

    sleb = (16, 256)
    monkeypatch.setattr(load_registry().get("scorer", "perplexity"), "calibration_size", sleb)
    sample = ["--calibration", "wikitext2-sample"]
    expected = {"block_influence": DEFAULT_SIZE, "perplexity": sleb}
    for method, (n_samples, seq_len) in expected.items():
        _, data = score(tiny_llama_dir, tmp_path, "--method", method, *sample, "-k", "1")
        assert data["calibration"] == {"source": "wikitext2-sample", "n_samples": n_samples, "seq_len": seq_len}
    _, data = score(tiny_llama_dir, tmp_path, "--method", "perplexity", *sample, "--n-samples", "2", "-k", "1")
    assert data["calibration"]["n_samples"] == 2 and data["calibration"]["seq_len"] == sleb[1]
    out = tmp_path / "pruned"
    result = run("prune", "-m", tiny_llama_dir, "--method", "perplexity", "-k", 1, *sample, "-O", out, "--no-speed",
                 "--heal", "linear_ls")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "drtframe.json").read_text())
    assert manifest["calibration"]["n_samples"] == sleb[0]
    assert manifest["healing"]["calibration"]["n_samples"] == DEFAULT_SIZE[0]  # the healer's size is the default


def test_prune_refuses_missing_calibration_before_loading(tiny_llama_dir, tmp_path):
    result = run("prune", "-m", tiny_llama_dir, "--method", "taylor", "-k", 1, "--calibration", tmp_path / "none.txt",
                 "-O", tmp_path / "out", "--no-speed")
    assert result.exit_code == 2 and "calibration text not found" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_score_on_smollm2_with_the_wikitext_file(smollm2_dir, tmp_path):
    from conftest import WIKITEXT_HEAD as wikitext

    _, data = score("smollm2-135m", tmp_path, "--method", "block_influence", "--calibration", wikitext,
                    "--n-samples", "4", "--seq-len", "64", "-k", "8")
    assert data["num_layers"] == 30 and len(data["order"]) == 8
    assert all(0 < s < 1 for s in data["scores"])
    assert max(data["scores"][i] for i in data["order"]) <= min(s for i, s in enumerate(data["scores"]) if i not in data["order"])
