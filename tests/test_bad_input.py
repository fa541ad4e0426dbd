"""Bad input costs one line before the work: output paths, models saved without a tokenizer."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from drtframe.cli import cli
from test_eval_cli import yaml_task  # noqa: F401  (fixture: a 12-item YAML task)
from tiny_models import tiny_model


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def one_line(result) -> str:
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output.strip()


def test_outputs_into_missing_directories_are_written(tiny_llama_dir, yaml_task, tmp_path):  # noqa: F811
    scores, results = tmp_path / "a" / "b" / "scores.json", tmp_path / "c" / "results.json"
    profile, plot = tmp_path / "d" / "profile.json", tmp_path / "e" / "f" / "profile.png"
    for args in (["score", "-m", tiny_llama_dir, "--method", "reverse_order", "-O", scores],
                 ["eval", "-m", tiny_llama_dir, "-b", yaml_task, "-O", results],
                 ["probe", "-m", tiny_llama_dir, "-b", yaml_task, "-O", profile, "--plot", plot]):
        result = run(*args)
        assert result.exit_code == 0, result.output
    assert json.loads(scores.read_text())["method"] == "reverse_order@one_shot"
    assert json.loads(results.read_text())["results"]["tiny_words"]["n"] == 12
    assert json.loads(profile.read_text())["n"] == 12 and plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("command", [["score", "--method", "reverse_order"], ["eval", "-b", "arc_easy"],
                                     ["probe", "-b", "arc_easy"]])
def test_an_output_that_cannot_be_written_is_refused_before_the_model_loads(command, tmp_path):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir").mkdir()
    for output, message in ((tmp_path / "a-file" / "out.json", "cannot make its directory"),
                            (tmp_path / "a-dir", "is a directory; give a file name")):
        result = run(command[0], "-m", tmp_path / "no-such-model", *command[1:], "-O", output)
        assert result.exit_code == 2 and message in one_line(result)


@pytest.fixture
def untokenized(tmp_path):
    """A tiny Llama saved without tokenizer files, as a bare `model.save_pretrained` leaves it."""
    path = tmp_path / "no-tokenizer"
    tiny_model("llama").save_pretrained(path)
    return path


@pytest.mark.parametrize("command", [
    ["score", "--method", "reverse_order"],
    ["eval", "-b", "{task}"],
    ["probe", "-b", "{task}"],
    ["prune", "--layers", "1", "--no-guard", "--no-speed", "-O", "{tmp}/pruned"],
])
def test_a_model_without_tokenizer_files_is_named_and_tokenizer_fixes_it(command, untokenized, tiny_llama_dir,
                                                                         yaml_task, tmp_path):  # noqa: F811
    args = [a.format(task=yaml_task, tmp=tmp_path) for a in command]
    result = run(args[0], "-m", untokenized, *args[1:])
    assert result.exit_code == 2
    assert f"{untokenized} holds no tokenizer files" in one_line(result)
    assert "pass --tokenizer PATH_OR_ID" in result.output
    fixed = run(args[0], "-m", untokenized, "--tokenizer", tiny_llama_dir, *args[1:])
    assert fixed.exit_code == 0, fixed.output


def test_a_tokenizer_that_encodes_nothing_is_refused(untokenized):
    """With a tokenizer_config.json alone, transformers builds a tokenizer of no vocabulary."""
    (untokenized / "tokenizer_config.json").write_text('{"tokenizer_class": "GPT2Tokenizer"}')
    result = run("score", "-m", untokenized, "--method", "reverse_order")
    assert result.exit_code == 2
    assert f"the tokenizer of {untokenized} encodes text to no tokens" in one_line(result)
