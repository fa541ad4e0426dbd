"""The calibration rule: tokenise once without special tokens, cut consecutive chunks from the start."""

from __future__ import annotations

import pytest
from tokenizers.processors import TemplateProcessing

from drtframe.errors import DrtframeError
from drtframe.scoring.calibration import CalibrationSpec, calibration_tokens, chunk_tokens, load_text
from tiny_models import tiny_tokenizer


def words(count: int, first: int = 0) -> str:
    """' w0 w1 ...': the tiny tokenizer maps word wI to id I + 2."""
    return " ".join(f"w{i}" for i in range(first, first + count))


def bos_tokenizer():
    """The tiny tokenizer, made to add a special token in front of every text by default."""
    tok = tiny_tokenizer()
    tok.backend_tokenizer.post_processor = TemplateProcessing(single="<eos> $A", special_tokens=[("<eos>", 1)])
    assert tok("w0")["input_ids"] == [1, 2]
    return tok


def test_chunks_are_consecutive_from_the_start_without_special_tokens():
    chunks = chunk_tokens(bos_tokenizer(), words(40), n_samples=3, seq_len=5)
    assert chunks.tolist() == [[2, 3, 4, 5, 6], [7, 8, 9, 10, 11], [12, 13, 14, 15, 16]]


def test_text_that_is_too_short_is_refused():
    with pytest.raises(DrtframeError, match="has 14 tokens, but 3 samples of 5 need 15; lower --n-samples or --seq-len"):
        chunk_tokens(tiny_tokenizer(), words(14), n_samples=3, seq_len=5)
    assert chunk_tokens(tiny_tokenizer(), words(15), n_samples=3, seq_len=5).shape == (3, 5)


def test_a_text_file_is_a_source(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(words(30) + "\n")
    spec = CalibrationSpec(str(path), n_samples=2, seq_len=4)
    assert calibration_tokens(spec, tiny_tokenizer()).tolist() == [[2, 3, 4, 5], [6, 7, 8, 9]]


@pytest.mark.parametrize("spec, message", [
    (CalibrationSpec("/no/such/file.txt"), "calibration text not found: /no/such/file.txt"),
    (CalibrationSpec(n_samples=0), "--n-samples must be at least 1"),
    (CalibrationSpec(seq_len=1), "--seq-len at least 2"),
])
def test_bad_specs_are_refused_before_any_model_loads(spec, message):
    with pytest.raises(DrtframeError, match=message):
        spec.check()


def test_wikitext2_reads_the_hub_train_split_and_joins_its_non_blank_rows(monkeypatch):
    """SLEB calibrates on the train split; the test split is what wikitext2_ppl evaluates."""
    import datasets

    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return {"text": ["", " = Title = \n", "", " w0 w1 w2 \n", " \n", " w3 \n"]}

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_text("wikitext2") == " = Title = \n w0 w1 w2 \n w3 \n"
    assert calls == [(("Salesforce/wikitext", "wikitext-2-raw-v1"), {"split": "train"})]


def test_an_unreachable_hub_points_to_a_local_file(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'Salesforce/wikitext' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DrtframeError, match="could not load Salesforce/wikitext/wikitext-2-raw-v1 .*--calibration FILE"):
        load_text("wikitext2")


def test_the_packaged_wikitext_sample_is_the_start_of_the_test_text():
    spec = CalibrationSpec("wikitext2-sample")
    spec.check()
    text = load_text("wikitext2-sample")
    assert text.startswith(" = Robert Boulter = \n") and 120_000 < len(text.encode()) <= 128 * 1024
    assert "\n\n" not in text  # blank rows dropped, as the hub rows are joined


def test_the_packaged_calibration_text_shares_no_line_and_no_document_with_the_perplexity_slices():
    """Calibration must not see the text the packaged perplexity benchmarks evaluate. Section headings
    repeat across articles (" = = Background = = " is in both), so the check is on every other line."""
    import json

    from drtframe.scoring.calibration import SAMPLE_TEXT

    samples = SAMPLE_TEXT.parent / "eval"
    calibration = {line for line in load_text("wikitext2-sample").splitlines() if line.strip()}
    pages = [json.loads(line)["page"] for line in
             (samples / "EleutherAI/wikitext_document_level/wikitext-2-raw-v1/test.jsonl").open(encoding="utf-8")]
    rows = [json.loads(line)["text"] for line in
            (samples / "Salesforce/wikitext/wikitext-2-raw-v1/test.jsonl").open(encoding="utf-8")]
    evaluated = {line for text in pages + rows for line in text.splitlines() if line.strip()}
    assert len(pages) == 8 and len(rows) == 327 and len(evaluated) > 300
    assert {line for line in calibration & evaluated if not line.startswith(" = = ")} == set()
    titles = {page.splitlines()[0] for page in pages}
    assert len(titles) == 8 and not titles & calibration  # no document begins inside the calibration text
