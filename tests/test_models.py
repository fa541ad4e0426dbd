"""Model sources: hub ids reach transformers untouched, local paths are checked, aliases are listed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from drtframe.cli import cli
from drtframe.errors import DrtframeError
from drtframe.models.loading import ModelSpec, load_model, locate, resolve_dtype


class Reached(Exception):
    pass


def test_hub_id_goes_to_from_pretrained_without_remote_code(monkeypatch, registry):
    from transformers import AutoModelForCausalLM

    calls = []

    def fake(source, **kwargs):
        calls.append((source, kwargs))
        raise Reached

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake)
    with pytest.raises(Reached):
        load_model(ModelSpec("HuggingFaceTB/SmolLM2-135M", device="cpu"), registry)
    source, kwargs = calls[0]
    assert source == "HuggingFaceTB/SmolLM2-135M"
    assert kwargs["trust_remote_code"] is False and "gguf_file" not in kwargs
    with pytest.raises(Reached):
        load_model(ModelSpec("org/custom", device="cpu", trust_remote_code=True), registry)
    assert calls[1][1]["trust_remote_code"] is True


def test_gguf_file_is_loaded_from_its_directory(tmp_path):
    gguf = tmp_path / "model.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    assert locate(str(gguf)) == (str(tmp_path), {"gguf_file": "model.Q4.gguf"})


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(DrtframeError, match="no config.json"):
        locate(str(tmp_path))


def test_dtype_defaults_suit_the_device():
    import torch

    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") is torch.bfloat16
    assert resolve_dtype("float16", "cpu") is torch.float16


def test_unavailable_device_is_refused(tiny_llama_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(cli, ["prune", "-m", str(tiny_llama_dir), "--layers", "1", "--device", "cuda",
                                      "-O", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not available" in result.output


def test_models_lists_aliases_and_cache_state(tmp_path, monkeypatch):
    monkeypatch.setenv("DRTFRAME_CACHE", str(tmp_path))
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0 and "no (fetched on first use)" in result.output
    assert "smollm2-135m" in result.output and "gemma3-270m" in result.output
    fake = tmp_path / "models" / "smollm2-135m"
    fake.mkdir(parents=True)
    (fake / "config.json").write_text("{}")
    assert "yes" in CliRunner().invoke(cli, ["models"]).output


def test_cache_location_follows_xdg(monkeypatch, tmp_path):
    from drtframe.models.aliases import cache_root

    monkeypatch.delenv("DRTFRAME_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "drtframe"
