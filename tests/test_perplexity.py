"""Perplexity benchmarks on tiny models: windows, chunks, scores against a plain forward, the CLI."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from click.testing import CliRunner

from drtframe.cli import cli
from drtframe.errors import DrtframeError
from drtframe.evaluation.data import Row
from drtframe.evaluation.rolling import rolling_windows
from drtframe.evaluation.runner import resolve_benchmark
from drtframe.evaluation.text_benchmark import TextBenchmark, text_result
from drtframe.evaluation.text_scores import load_text_items, text_batches, text_scores
from drtframe.models.loading import ModelSpec, load_model

NAMES = ("wikitext", "wikitext2_ppl", "lambada_openai")
PATHS = {"wikitext": "EleutherAI/wikitext_document_level/wikitext-2-raw-v1/test.jsonl",
         "wikitext2_ppl": "Salesforce/wikitext/wikitext-2-raw-v1/test.jsonl",
         "lambada_openai": "EleutherAI/lambada_openai/default/test.jsonl"}


def words(rng: random.Random, count: int) -> str:
    return " ".join(f"w{rng.randrange(2, 90)}" for _ in range(count))


@pytest.fixture
def text_dir(tmp_path):
    """Rows of every perplexity benchmark in the --data-dir layout, in the tiny tokenizer's words: documents
    longer than the tiny models' 128-token context, so they span several rolling windows."""
    rng = random.Random(0)
    rows = {"wikitext": [{"page": f" = T{i} = \n " + words(rng, 100 * i + 50) + " \n"} for i in range(4)],
            "wikitext2_ppl": [{"text": words(rng, 9) + " \n"} if i % 3 else {"text": ""} for i in range(30)],
            "lambada_openai": [{"text": words(rng, 6 + i % 4)} for i in range(6)]}
    for name, path in PATHS.items():
        (tmp_path / path).parent.mkdir(parents=True)
        (tmp_path / path).write_text("".join(json.dumps(r) + "\n" for r in rows[name]))
    return tmp_path


@pytest.fixture
def tiny(tiny_llama_dir, registry):
    return load_model(ModelSpec(str(tiny_llama_dir)), registry)


def direct(handle, context, continuation):
    """The continuation's summed log-probability and greedy flag from one plain forward of the model."""
    ids = torch.tensor([list(context) + list(continuation[:-1])])
    logp = torch.log_softmax(handle.model(input_ids=ids).logits[0, len(context) - 1:].float(), -1)
    target = torch.tensor(continuation)
    return logp[torch.arange(len(target)), target].sum().item(), bool((logp.argmax(-1) == target).all())


def test_rolling_windows_predict_every_token_once_within_the_context():
    assert rolling_windows(range(1, 8), 0, 3) == [((0,), (1, 2, 3)), ((3,), (4, 5, 6)), ((4, 5, 6), (7,))]
    assert rolling_windows([5], 0, 4) == [((0,), (5,))]
    for n, length in ((1, 1), (9, 2), (40, 7), (128, 128), (129, 128)):
        windows = rolling_windows(range(n), -1, length)
        assert [t for _, cont in windows for t in cont] == list(range(n))
        assert all(len(ctx) + len(cont) <= length + 1 and len(cont) <= length for ctx, cont in windows)
        assert all(ctx[-1] == cont[0] - 1 for ctx, cont in windows[1:])  # each window follows its context


def test_the_benchmarks_are_registered_and_resolved(registry):
    for name in NAMES:
        benchmark = resolve_benchmark(registry, name)
        assert isinstance(benchmark, TextBenchmark) and benchmark.split == "test"
    result = CliRunner().invoke(cli, ["plugins", "--kind", "benchmark"])
    assert all(name in result.output for name in NAMES), result.output
    with pytest.raises(DrtframeError, match="wikitext is a perplexity benchmark: it has no multiple-choice items"):
        resolve_benchmark(registry, "wikitext").item({"page": "x"}, 0)


@pytest.mark.parametrize("name", NAMES)
def test_rows_come_from_the_hub_with_lm_evals_dataset(name, registry, tiny, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, config, split):
        calls.append((path, config, split))
        return [{"page": " = T = \n w3 w4 \n", "text": "w3 w4 w5 w6 \n"}] * 4

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    benchmark = resolve_benchmark(registry, name).configured(4)
    items = load_text_items(tiny, benchmark, 2, None)
    expected = {"wikitext": ("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", "test[:2]"),
                "wikitext2_ppl": ("Salesforce/wikitext", "wikitext-2-raw-v1", "test"),
                "lambada_openai": ("EleutherAI/lambada_openai", "default", "test[:2]")}
    assert calls == [expected[name]] and len(items) == 2


def test_a_data_file_replaces_hub_and_data_dir(tmp_path, tiny):
    from drtframe import ContinuationBenchmark

    (tmp_path / "rows.jsonl").write_text('{"sentence": "w2 w3 w4"}\n{"sentence": "w5 w6"}\n')

    class LastWord(ContinuationBenchmark):
        name, dataset_path, split, data_file = "last_word", "none", "test", tmp_path / "rows.jsonl"
        text_template = "{{sentence.split(' ')[:-1]|join(' ')}}"
        target_template = "{{' '+sentence.split(' ')[-1]}}"

    items = load_text_items(tiny, LastWord(), None, tmp_path / "ignored")
    assert [item.windows for item in items] == [(((4, 5), (6,)),), (((7,), (8,)),)]  # wI is id I + 2


@pytest.mark.parametrize("name", NAMES)
def test_every_window_scores_as_a_plain_forward_and_the_units_reproduce_the_metric(name, registry, tiny, text_dir):
    benchmark = resolve_benchmark(registry, name).configured(16)
    items = load_text_items(tiny, benchmark, None, text_dir)
    scores = text_scores(tiny, items, budget=256)
    assert [s.shape for s in scores] == [(item.num_choices, 2) for item in items]
    if name == "wikitext":
        assert [item.num_choices for item in items] == [1, 2, 2, 3]  # 53-353 tokens, 128-token windows
    for item, score in zip(items, scores):
        for (context, continuation), (ll, greedy) in zip(item.windows, score.tolist()):
            expected, expected_greedy = direct(tiny, context, continuation)
            assert ll == pytest.approx(expected, rel=1e-6) and bool(greedy) == expected_greedy
    result = text_result(benchmark, items, scores)
    json.dumps(result)
    lls, counts = zip(*result["units"])
    assert result["ppl"] == math.exp(-sum(lls) / sum(counts)) == result["metrics"][result["metric"]]
    assert result["kind"] == "perplexity" and result["n"] == len(items)


def test_wikitext_counts_words_and_bytes_of_the_page_and_reports_lm_evals_metrics(registry, tiny, text_dir):
    benchmark = resolve_benchmark(registry, "wikitext")
    items = load_text_items(tiny, benchmark, 2, text_dir)
    page = json.loads((text_dir / PATHS["wikitext"]).read_text().splitlines()[0])["page"]
    assert items[0].count == len(page.split()) + 2 and items[0].size == len(page.encode())  # '' at both ends
    result = text_result(benchmark, items, text_scores(tiny, items))
    lls = [ll for ll, _ in result["units"]]
    assert result["bytes"] == [item.size for item in items]
    assert result["metrics"]["byte_perplexity"] == math.exp(-sum(lls) / sum(result["bytes"]))
    assert result["metrics"]["bits_per_byte"] == -sum(lls) / sum(result["bytes"]) / math.log(2)


def test_lambada_context_and_target_split_at_the_last_space_and_acc_is_all_greedy(registry, tiny, text_dir):
    from drtframe.evaluation.metrics import mean_stderr

    benchmark = resolve_benchmark(registry, "lambada_openai")
    items = load_text_items(tiny, benchmark, None, text_dir)
    first = json.loads((text_dir / PATHS["lambada_openai"]).read_text().splitlines()[0])["text"].split(" ")
    assert items[0].windows == ((tuple(int(w[1:]) + 2 for w in first[:-1]), (int(first[-1][1:]) + 2,)),)
    result = text_result(benchmark, items, text_scores(tiny, items))
    lls = [ll for ll, _ in result["units"]]
    assert result["ppl"] == math.exp(-sum(lls) / len(lls))
    assert result["acc"] == sum(result["correct"]) / len(items) == result["metrics"]["acc"]
    assert result["acc_stderr"] == mean_stderr([float(c) for c in result["correct"]])


def test_chunks_follow_the_papers_rule(registry, tiny, text_dir):
    benchmark = resolve_benchmark(registry, "wikitext2_ppl").configured(32)
    rows = [json.loads(line)["text"] for line in (text_dir / PATHS["wikitext2_ppl"]).read_text().splitlines()]
    ids = tiny.tokenizer("".join(r for r in rows if r.strip()), add_special_tokens=False)["input_ids"]
    items = load_text_items(tiny, benchmark, None, text_dir)
    assert len(items) == len(ids) // 32 == 5  # 180 tokens: the partial sixth chunk is dropped
    chunks = [tuple(ids[i:i + 32]) for i in range(0, 160, 32)]
    assert [item.windows[0][0] + item.windows[0][1] for item in items] == chunks
    assert all(item.count == 31 for item in items) and len(load_text_items(tiny, benchmark, 2, text_dir)) == 2
    result = text_result(benchmark, items, text_scores(tiny, items))
    chunks = torch.tensor(ids[:160]).view(5, 32)
    losses = [tiny.model(input_ids=c[None], labels=c[None]).loss.item() for c in chunks]
    assert result["ppl"] == pytest.approx(math.exp(sum(losses) / 5), rel=1e-5) and result["seq_len"] == 32


@pytest.mark.parametrize("seq_len, message", [
    (200, "--seq-len 200 exceeds the model's context of 128 tokens"),
    (64, "wikitext2_ppl: the text has 36 tokens, fewer than one chunk of 64; lower --seq-len"),
    (1, "option 'seq_len' of wikitext2_ppl"),
])
def test_bad_chunk_lengths_are_refused_in_one_line(seq_len, message, registry, tiny, tmp_path):
    path = tmp_path / PATHS["wikitext2_ppl"]
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"text": " w2 w3 w4 w5 w6 w7 w8 w9 w10 \n"}) + "\n" for _ in range(4)))
    with pytest.raises(DrtframeError, match=message):
        load_text_items(tiny, resolve_benchmark(registry, "wikitext2_ppl").configured(seq_len), None, tmp_path)


@pytest.mark.parametrize("name, row, message", [
    ("wikitext", {"text": "w2"}, "missing field 'page'"),
    ("wikitext", {"page": ""}, "the document is empty"),
    ("wikitext2_ppl", {"page": "w2"}, "missing field 'text'"),
    ("lambada_openai", {"page": "w2"}, "missing field 'text'"),
])
def test_a_malformed_row_is_named_by_file_and_line(name, row, message, registry, tiny, tmp_path):
    path = tmp_path / PATHS[name]
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DrtframeError, match=f"{path}:1: .*{message}"):
        load_text_items(tiny, resolve_benchmark(registry, name).configured(8), None, tmp_path)


def test_the_forwards_depend_on_the_items_and_config_not_on_the_blocks_kept(registry, tiny, text_dir):
    """compare replays a dense model's block inputs into pruned variants: both must run the same forwards."""
    items = load_text_items(tiny, resolve_benchmark(registry, "wikitext"), None, text_dir)
    pruned = tiny.without((1, 3))
    assert text_batches(tiny, items, 512) == text_batches(pruned, items, 512)
    shapes = {}
    for key, handle in (("dense", tiny), ("pruned", pruned)):
        seen = shapes.setdefault(key, [])
        hook = handle.model.register_forward_pre_hook(lambda m, a, k: seen.append(tuple(k["input_ids"].shape)),
                                                      with_kwargs=True)
        text_scores(handle, items, budget=512)
        hook.remove()
    assert shapes["dense"] == shapes["pruned"] and len(shapes["dense"]) == len(text_batches(tiny, items, 512))


def test_eval_cli_prints_and_writes_every_benchmarks_own_metrics(tiny_llama_dir, text_dir, tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["eval", "-m", str(tiny_llama_dir), "-b", ",".join(NAMES), "--data-dir",
                                      str(text_dir), "--limit", "3", "--seq-len", "16", "-O", str(out)])
    assert result.exit_code == 0, result.output
    for expected in ("wikitext", "3 documents", "word_perplexity", "3 chunks of 16 tokens", "token_perplexity",
                     "3 items", "acc ", "bits_per_byte", "lower is better"):
        assert expected in result.output, expected
    data = json.loads(out.read_text())
    assert data["config"]["seq_len"] == 16 and data["results"]["wikitext2_ppl"]["seq_len"] == 16
    for name in NAMES:
        entry = data["results"][name]
        assert entry["kind"] == "perplexity" and entry["n"] == len(entry["units"]) == 3
        assert entry["ppl"] == math.exp(-sum(ll for ll, _ in entry["units"]) / sum(c for _, c in entry["units"]))
    assert len(data["results"]["lambada_openai"]["correct"]) == 3


def test_eval_cli_refuses_format_for_a_perplexity_benchmark(tiny_llama_dir, text_dir):
    result = CliRunner().invoke(cli, ["eval", "-m", str(tiny_llama_dir), "-b", "arc_easy,wikitext,lambada_openai",
                                      "--format", "letter", "--data-dir", str(text_dir)])
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: --format applies to multiple-choice benchmarks; wikitext, "
                                     "lambada_openai are perplexity benchmarks")


def test_the_packaged_slices_load_in_the_data_dir_layout(registry):
    from drtframe.evaluation.data import load_rows
    from drtframe.scoring.calibration import SAMPLE_TEXT

    sizes = {"wikitext": 8, "wikitext2_ppl": 327, "lambada_openai": 500}
    for name, size in sizes.items():
        rows = load_rows(resolve_benchmark(registry, name), SAMPLE_TEXT.parent / "eval", None)
        assert len(rows) == size and all(isinstance(r, Row) for r in rows)
