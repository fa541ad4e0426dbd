"""One model spread over GPUs, CPU memory and disk (`--device-map auto`), through accelerate.

transformers places whole modules where `max_memory` allows and gives each an accelerate hook that
moves the module's inputs to the device it runs on (loading offloaded weights for the call). So
drtframe never assumes one device: inputs go where the model runs, and a readout asks where the
tensors it combines are.
"""

from __future__ import annotations

import tempfile
import weakref
from typing import TYPE_CHECKING

from ..errors import DrtframeError

if TYPE_CHECKING:
    import torch

DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's placement strategies
_MEMORY_EXAMPLE = "cpu=2GiB,cuda:0=70GiB"


def fast_bfloat16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16
    or AMX. A CPU without them (AVX2 only) emulates bfloat16, several times slower than float32
    (benchmarks/bfloat16_speed.py)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in
                   ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


def parse_max_memory(text: str) -> dict[int | str, int | str]:
    """'cpu=2GiB,cuda:0=70GiB' -> {'cpu': '2GiB', 0: '70GiB'}, the form accelerate takes; one line for anything else.

    Devices: cpu, mps, disk, and a GPU as cuda:N or N; sizes as accelerate reads them (70GiB, 500MB) or bytes.
    """
    from accelerate.utils import convert_file_size_to_int

    budget: dict[int | str, int | str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        device, _, size = (s.strip() for s in part.partition("="))
        gpu = device.removeprefix("cuda:")
        key: int | str = int(gpu) if gpu.isdigit() else device
        if not size or (key not in ("cpu", "mps", "disk") and not isinstance(key, int)):
            raise DrtframeError(f"--max-memory expects DEVICE=SIZE pairs such as {_MEMORY_EXAMPLE} (devices: cpu, "
                                f"mps, disk, cuda:N), got {part!r}")
        try:
            budget[key] = int(size) if size.isdigit() else size
            convert_file_size_to_int(budget[key])
        except ValueError:
            raise DrtframeError(f"--max-memory: {size!r} is not a size; write it as 70GiB, 500MB or a number of "
                                f"bytes") from None
    if not budget:
        raise DrtframeError(f"--max-memory names no device; e.g. {_MEMORY_EXAMPLE}")
    return budget


def check_placement(device: str, device_map: str | None, max_memory: str | None) -> None:
    """Refuse contradictory placement options with one line."""
    if device_map is None:
        if max_memory is not None:
            raise DrtframeError("--max-memory limits where --device-map places the model; add --device-map auto")
        return
    if device_map not in DEVICE_MAPS:
        raise DrtframeError(f"unknown device map {device_map!r}; choose from {', '.join(DEVICE_MAPS)}")
    if device != "auto":
        raise DrtframeError(f"--device {device} and --device-map {device_map} contradict: the device map places "
                            f"the model itself (limit it with --max-memory, e.g. {_MEMORY_EXAMPLE})")
    if max_memory is not None:
        parse_max_memory(max_memory)


def dispatch_arguments(device_map: str, max_memory: str | None, offload_folder: str) -> dict:
    """from_pretrained arguments that spread the model; weights that cannot be read in place from the
    checkpoint's safetensors (a .bin or GGUF checkpoint, converted MoE experts) go to `offload_folder`
    when they must go to disk."""
    arguments = {"device_map": device_map, "offload_folder": offload_folder}
    if max_memory is not None:
        arguments["max_memory"] = parse_max_memory(max_memory)
    return arguments


def offload_folder() -> tempfile.TemporaryDirectory:
    """A fresh folder under $TMPDIR for disk-offloaded weights; removed when the object is collected."""
    return tempfile.TemporaryDirectory(prefix="drtframe-offload-")


def keep_offload_folder(model, folder: tempfile.TemporaryDirectory) -> None:
    """Keep `folder` while `model` may still read weights from it; remove it once the model is collected."""
    weakref.finalize(model, folder.cleanup)


def execution_device(module):
    """Where `module` runs: its accelerate hook's execution device when dispatched, else where its weights are."""
    import torch

    hook = getattr(module, "_hf_hook", None)
    for one in getattr(hook, "hooks", (hook,)):  # a SequentialHook holds several
        device = getattr(one, "execution_device", None)
        if device is not None:
            return torch.device(device)
    return next(module.parameters()).device


def offloaded_parameters(module) -> list[str]:
    """Names of `module`'s parameters held off-device (on disk, or in CPU memory for a GPU run): accelerate
    keeps them as meta tensors and loads them only for the duration of a forward."""
    return [name for name, p in module.named_parameters() if p.device.type == "meta"]


def head_parameters(model, head) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The output head's weight and bias, read back from disk where a device map offloaded them."""
    from transformers.integrations.accelerate import load_offloaded_parameter

    name = next(n for n, module in model.named_modules() if module is head)
    found = []
    for part in ("weight", "bias"):
        value = getattr(head, part, None)
        if value is not None and value.device.type == "meta":
            value = load_offloaded_parameter(model, f"{name}.{part}")
        found.append(None if value is None else value.detach())
    return found[0], found[1]
