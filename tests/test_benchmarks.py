"""Built-in benchmarks build the prompts lm-eval 0.4.x builds, from real rows; data errors are clear."""

from __future__ import annotations

import json
import math

import pytest

from conftest import TEST_DATA
from drtframe.errors import DrtframeError
from drtframe.evaluation.metrics import Score, aggregate, mean_stderr
from drtframe.evaluation.runner import load_items, resolve_benchmark

MC = TEST_DATA / "mc"


def first(registry, name, split=None, fmt=None, limit=2):
    return load_items(resolve_benchmark(registry, name, split), fmt, limit, MC)


def test_arc_easy_matches_lm_eval_template(registry):
    row = json.loads((MC / "allenai/ai2_arc/ARC-Easy/validation.jsonl").open().readline())
    item = first(registry, "arc_easy", "validation")[0]
    assert item.contexts == (f"Question: {row['question']}\nAnswer:",) * len(row["choices"]["text"])
    assert item.continuations == tuple(" " + t for t in row["choices"]["text"])
    assert item.gold == row["choices"]["label"].index(row["answerKey"])
    assert item.lengths == tuple(len(t) for t in row["choices"]["text"])


def test_default_splits_follow_lm_eval(registry):
    splits = {n: registry.get("benchmark", n).split for n in registry.names("benchmark")}
    assert splits["arc_easy"] == splits["openbookqa"] == splits["sciq"] == splits["mmlu_anatomy"] == "test"
    assert splits["piqa"] == splits["hellaswag"] == splits["winogrande"] == splits["boolq"] == "validation"
    assert sum(n.startswith("mmlu_") for n in splits) == 57


def test_winogrande_scores_the_shared_ending_after_each_option(registry):
    row = json.loads((MC / "allenai/winogrande/winogrande_xl/validation.jsonl").open().readline())
    item = first(registry, "winogrande")[0]
    blank = row["sentence"].index("_")
    assert item.contexts == (row["sentence"][:blank] + row["option1"], row["sentence"][:blank] + row["option2"])
    assert item.continuations == (" " + row["sentence"][blank + 1:].strip(),) * 2
    assert item.gold == int(row["answer"]) - 1


def test_hellaswag_is_preprocessed_like_lm_eval(registry):
    bench = resolve_benchmark(registry, "hellaswag")
    row = {"activity_label": "Home", "ctx_a": "How to paint. [title] Pick a brush.", "ctx_b": "then you",
           "endings": ["dip it  [step] in paint.", " wash it."], "label": "1"}
    item = bench.item(bench.process_docs([row])[0], 0)
    assert item.contexts == ("Home: How to paint.. Pick a brush. Then you",) * 2
    # lm-eval replaces double spaces once, so the three left by "[step]" become two
    assert item.continuations == (" dip it  in paint.", " wash it.") and item.gold == 1


def test_real_hellaswag_rows_load(registry):
    items = first(registry, "hellaswag", limit=50)
    assert len(items) == 50 and all(i.num_choices == 4 for i in items)


def test_mmlu_subject_prompt_has_description_and_letters(registry):
    row = json.loads((MC / "cais/mmlu/anatomy/test.jsonl").open().readline())
    item = first(registry, "mmlu_anatomy")[0]
    expected = ("The following are multiple choice questions (with answers) about anatomy.\n\n"
                f"{row['question'].strip()}\nA. {row['choices'][0]}\nB. {row['choices'][1]}\n"
                f"C. {row['choices'][2]}\nD. {row['choices'][3]}\nAnswer:")
    assert item.contexts[0] == expected
    assert item.continuations == (" A", " B", " C", " D") and item.gold == row["answer"]


def test_letter_and_cloze_conversions(registry):
    piqa = resolve_benchmark(registry, "piqa")
    letter = piqa.item({"goal": "Open a jar", "sol1": "twist", "sol2": "shake", "label": 1}, 0, "letter")
    assert letter.contexts == ("Open a jar\nA. twist\nB. shake\nAnswer:",) * 2
    assert letter.continuations == (" A", " B") and letter.gold == 1
    mmlu = resolve_benchmark(registry, "mmlu_anatomy")
    cloze = mmlu.item({"question": " Bones? ", "choices": ["a", "b", "c", "d"], "answer": 2}, 0, "cloze")
    assert cloze.contexts[0] == ("The following are multiple choice questions (with answers) about anatomy.\n\n"
                                 "Question: Bones?\nAnswer:")
    assert cloze.continuations == (" a", " b", " c", " d") and cloze.gold == 2


def test_missing_split_names_the_path_and_the_splits_there(registry):
    with pytest.raises(DrtframeError, match=r"ARC-Easy/test.jsonl.*validation: choose one with --split"):
        first(registry, "arc_easy")


def test_malformed_rows_name_file_line_and_field(registry, tmp_path):
    folder = tmp_path / "baber/piqa/default"
    folder.mkdir(parents=True)
    good = {"goal": "g", "sol1": "a", "sol2": "b", "label": 0}
    broken = {"goal": "g", "sol1": "a", "label": 0}
    (folder / "validation.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(DrtframeError, match=r"validation.jsonl:2: malformed row, missing field .*sol2"):
        load_items(resolve_benchmark(registry, "piqa"), None, None, tmp_path)
    (folder / "validation.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DrtframeError, match=r"validation.jsonl:2: not valid JSON"):
        load_items(resolve_benchmark(registry, "piqa"), None, None, tmp_path)


def test_hub_rows_come_through_datasets(registry, monkeypatch):
    import datasets

    calls = []

    def fake(path, name, split):
        calls.append((path, name, split))
        return [{"goal": "g", "sol1": "a", "sol2": "b", "label": 1}]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    items = load_items(resolve_benchmark(registry, "piqa"), None, 5, None)
    assert calls == [("baber/piqa", None, "validation[:5]")] and items[0].gold == 1


def test_stderr_and_group_aggregation_follow_lm_eval():
    values = [1, 0, 1, 1, 0, 1, 0]
    mu = sum(values) / 7
    assert mean_stderr(values) == pytest.approx(math.sqrt(sum((v - mu) ** 2 for v in values) / 6 / 7))
    a, b = [1, 0, 1, 1], [0, 0, 1]
    sa, sb = Score(0.75, mean_stderr(a), 0.75, mean_stderr(a), 4), Score(1 / 3, mean_stderr(b), 1 / 3, mean_stderr(b), 3)
    group = aggregate([sa, sb])
    assert group.acc == pytest.approx(4 / 7) and group.n == 7
    pooled = math.sqrt((3 * sa.acc_stderr ** 2 * 4 + 2 * sb.acc_stderr ** 2 * 3) / (7 - 2) / 7)
    assert group.acc_stderr == pytest.approx(pooled)
