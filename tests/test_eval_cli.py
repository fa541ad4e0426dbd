"""`drtframe eval` end to end on a tiny model: JSON output, YAML benchmarks, removed layers, bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from drtframe.cli import cli
from drtframe.evaluation.metrics import mean_stderr
from test_architectures import hand_pruned
from tiny_models import tiny_tokenizer

TASK = """\
task: tiny_words
dataset_path: json
dataset_kwargs:
  data_files:
    validation: rows.jsonl
validation_split: validation
output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: "{{options}}"
doc_to_target: "{{answer}}"
"""


@pytest.fixture
def yaml_task(tmp_path):
    rows = [{"question": f"w{i} w{i + 1}", "options": [f"w{i + 2}", f"w{i + 3} w4", "w9"], "answer": i % 3}
            for i in range(12)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "task.yaml").write_text(TASK)
    return tmp_path / "task.yaml"


def run_eval(*args):
    return CliRunner().invoke(cli, ["eval", *map(str, args)])


def test_yaml_benchmark_scores_and_writes_json(tiny_llama_dir, yaml_task, tmp_path):
    out = tmp_path / "r.json"
    result = run_eval("-m", tiny_llama_dir, "-b", yaml_task, "--limit", 10, "-O", out)
    assert result.exit_code == 0, result.output
    assert "tiny_words" in result.output
    entry = json.loads(out.read_text())["results"]["tiny_words"]
    assert entry["n"] == 10 and [i["index"] for i in entry["items"]] == list(range(10))
    correct = [float(i["pred"] == i["gold"]) for i in entry["items"]]
    assert entry["acc"] == pytest.approx(sum(correct) / 10)
    assert entry["acc_stderr"] == pytest.approx(mean_stderr(correct))
    first = entry["items"][0]
    assert first["gold"] == 0 and len(first["loglikelihoods"]) == 3
    assert first["pred"] == max(range(3), key=lambda k: first["loglikelihoods"][k])
    lengths = [len("w2"), len("w3 w4"), len("w9")]
    assert first["pred_norm"] == max(range(3), key=lambda k: first["loglikelihoods"][k] / lengths[k])


def test_remove_layers_equals_a_hand_pruned_model(tiny_llama_dir, yaml_task, tmp_path):
    pruned_dir = tmp_path / "hand"
    hand_pruned(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), (1, 2)).save_pretrained(pruned_dir)
    tiny_tokenizer().save_pretrained(pruned_dir)
    assert run_eval("-m", tiny_llama_dir, "-b", yaml_task, "--remove-layers", "1,2", "-O", tmp_path / "a.json").exit_code == 0
    assert run_eval("-m", pruned_dir, "-b", yaml_task, "-O", tmp_path / "b.json").exit_code == 0
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["config"]["removed_layers"] == [1, 2]
    for x, y in zip(a["results"]["tiny_words"]["items"], b["results"]["tiny_words"]["items"]):
        assert x["loglikelihoods"] == pytest.approx(y["loglikelihoods"], abs=1e-5)


@pytest.mark.parametrize("args, message", [
    (["-b", "arc_esy"], "did you mean 'arc_easy'"),
    (["-b", "piqa", "--limit", "0"], "--limit must be at least 1"),
    (["-b", "piqa", "--data-dir", "{tmp}"], "expected {tmp}/baber/piqa/default/validation.jsonl"),
    (["-b", "{tmp}/none.yaml"], "benchmark file not found"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tiny_llama_dir, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run_eval("-m", tiny_llama_dir, *args)
    assert result.exit_code == 2, result.output
    assert message.replace("{tmp}", str(tmp_path)) in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_yaml_errors_name_the_key(tiny_llama_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TASK.replace("doc_to_target", "doc_to_targt"))
    result = run_eval("-m", tiny_llama_dir, "-b", bad)
    assert result.exit_code == 2 and "doc_to_targt" in result.output


def test_mmlu_aggregates_all_subjects_by_size_like_lm_eval(tiny_llama_dir, tmp_path):
    from conftest import TEST_DATA
    from drtframe.evaluation.metrics import pooled_stderr

    out = tmp_path / "mmlu.json"
    result = run_eval("-m", tiny_llama_dir, "-b", "mmlu", "--limit", 2, "--data-dir", TEST_DATA / "mc", "-O", out)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())["results"]
    subjects = {k: v for k, v in results.items() if "items" in v and k.startswith("mmlu_")}
    assert len(subjects) == 57 and all(v["n"] == 2 for v in subjects.values())
    correct = [i["pred"] == i["gold"] for v in subjects.values() for i in v["items"]]
    assert results["mmlu"]["n"] == 114 and results["mmlu"]["acc"] == pytest.approx(sum(correct) / 114)
    stderrs = [v["acc_stderr"] for v in subjects.values()]
    assert results["mmlu"]["acc_stderr"] == pytest.approx(pooled_stderr(stderrs, [2] * 57))
    assert set(results["mmlu"]["members"]) == {"mmlu_humanities", "mmlu_other", "mmlu_social_sciences", "mmlu_stem"}
    assert results["mmlu_stem"]["n"] == 38
