"""Load a causal LM from what the user typed: a local directory, a .gguf file, an alias or a hub id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import DrtframeError
from .aliases import ALIASES, ensure_alias
from .placement import check_placement, dispatch_arguments, keep_offload_folder, offload_folder

if TYPE_CHECKING:  # the CLI imports this module for its option choices; torch waits for load_model
    from ..plugin_system.manager import Registry
    from .handle import ModelHandle

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
# What a directory needs for transformers to build a real tokenizer; without any of them it builds an
# empty one (every text encodes to no tokens) or fails deep inside, depending on the model type.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json", "vocab.txt",
                   "spiece.model")


@dataclass(frozen=True)
class ModelSpec:
    """How to load a model: `source` plus device, dtype, whether remote code may run, and where the
    tokenizer comes from when not from `source` (a model saved without one).

    `device_map` ("auto", or another of accelerate's strategies) spreads the model over the GPUs, CPU
    memory and disk instead of putting it on `device`; `max_memory` ("cpu=2GiB,cuda:0=70GiB") caps
    what it may use of each. Plain strings, so the spec pickles and hashes.
    """

    source: str
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    tokenizer: str | None = None
    device_map: str | None = None
    max_memory: str | None = None


def resolve_device(device: str) -> str:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is absent is an error."""
    import torch

    if device not in DEVICES:
        raise DrtframeError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (device == "cuda" and not cuda) or (device == "mps" and not mps):
        raise DrtframeError(f"device {device!r} is not available on this machine")
    return device


def resolve_dtype(dtype: str, device: str):
    """'auto' is float32 on CPU (fast and exact there) and bfloat16 on accelerators."""
    import torch

    if dtype not in DTYPES:
        raise DrtframeError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    if dtype == "auto":
        dtype = "float32" if device == "cpu" else "bfloat16"
    return getattr(torch, dtype)


def locate(source: str) -> tuple[str, dict]:
    """Where transformers should load `source` from, plus extra from_pretrained arguments."""
    if source in ALIASES:
        return str(ensure_alias(ALIASES[source])), {}
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise DrtframeError(f"{source} is a directory but holds no config.json: not a transformers model")
        return str(path), {}
    looks_local = source.startswith((".", "/", "~")) or source.endswith(".gguf") or source.count("/") > 1
    if looks_local or path.exists():
        raise DrtframeError(f"model not found: {source} (expected a model directory, a .gguf file, "
                            f"an alias ({', '.join(ALIASES)}) or a hub id such as org/name)")
    return source, {}  # a hub id


def locate_tokenizer(spec: ModelSpec) -> tuple[str, dict]:
    """Where the tokenizer loads from (`--tokenizer`, else the model); a directory without its files is refused."""
    source = spec.tokenizer or spec.source
    where, extra = locate(source)
    path = Path(where)
    if not extra and path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_FILES):
        hint = "" if spec.tokenizer else "; pass --tokenizer PATH_OR_ID, e.g. the model it was made from"
        raise DrtframeError(f"{source} holds no tokenizer files (none of {', '.join(TOKENIZER_FILES)}){hint}")
    return where, extra


def check_tokenizer(tokenizer, source: str) -> None:
    """Refuse a tokenizer that encodes text to no tokens (what transformers builds from too little)."""
    if not tokenizer("The answer is yes.", add_special_tokens=False)["input_ids"]:
        raise DrtframeError(f"the tokenizer of {source} encodes text to no tokens: its files describe no vocabulary; "
                            f"pass --tokenizer PATH_OR_ID, e.g. the model it was made from")


def drop_gguf_quantizer(model) -> None:
    """Treat a GGUF checkpoint that transformers dequantised to float as an ordinary model.

    transformers keeps a GGUF quantizer attached after dequantising, which makes `save_pretrained`
    refuse; the weights are plain floats, so the quantizer and its config entry can go. Weights
    that stayed in GGUF blocks cannot be pruned and saved, which is said plainly.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None or quantizer.quantization_config.quant_method != "gguf":
        return
    if not all(p.dtype.is_floating_point for p in model.parameters()) or getattr(quantizer, "supported", False):
        raise DrtframeError("this GGUF checkpoint keeps its weights quantised; drtframe needs float weights")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def load_model(spec: ModelSpec, registry: Registry) -> ModelHandle:
    """Load the model and tokenizer, in eval mode, on the requested device (or spread by the device map) and dtype."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .architecture import decoder_layers, find_architecture
    from .handle import ModelHandle

    check_placement(spec.device, spec.device_map, spec.max_memory)
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    where, extra = locate(spec.source)
    tokenizer_where, tokenizer_extra = locate_tokenizer(spec)
    tokenizer_source = spec.tokenizer or spec.source
    if spec.device_map is not None:
        offload = offload_folder()
        extra = {**extra, **dispatch_arguments(spec.device_map, spec.max_memory, offload.name)}
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, trust_remote_code=spec.trust_remote_code,
                                                     **extra)
    except OSError as exc:
        raise DrtframeError(f"could not load model {spec.source!r}: {' '.join(str(exc).split())[:400]}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_where, trust_remote_code=spec.trust_remote_code,
                                                  **tokenizer_extra)
    except (OSError, ValueError) as exc:
        raise DrtframeError(f"could not load the tokenizer of {tokenizer_source!r}: "
                            f"{' '.join(str(exc).split())[:400]}") from None
    check_tokenizer(tokenizer, tokenizer_source)
    drop_gguf_quantizer(model)
    if spec.device_map is None:
        model.to(device)
    else:
        keep_offload_folder(model, offload)
    model.eval()
    arch = find_architecture(registry, model.config.model_type)
    return ModelHandle(model, tokenizer, spec.source, arch, len(decoder_layers(model, arch)))
