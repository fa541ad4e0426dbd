"""Write a pruned model so that plain `AutoModelForCausalLM.from_pretrained(DIR)` reloads it exactly.

The model goes through `save_pretrained` (keeps tied embeddings tied, writes the sliced config),
into a temporary directory beside the target that is renamed into place only when complete, so an
interrupted run never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import DrtframeError
from ..models.handle import ModelHandle

MANIFEST = "drtframe.json"


def check_output_dir(output: Path, overwrite: bool) -> None:
    """Refuse a non-empty output directory unless `overwrite`; refuse a file in its place."""
    if output.exists() and not output.is_dir():
        raise DrtframeError(f"output {output} exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise DrtframeError(f"output directory {output} exists and is not empty (pass --overwrite to replace it)")


def save_pruned(handle: ModelHandle, output: Path, manifest: dict, overwrite: bool) -> None:
    """Save model, tokenizer and `drtframe.json` atomically to `output`."""
    check_output_dir(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.partial-"))
    try:
        handle.model.save_pretrained(tmp)
        handle.tokenizer.save_pretrained(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output)
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
