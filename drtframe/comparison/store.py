"""The content-addressed result store of `drtframe compare`: one JSON file per finished piece of work.

A key is the SHA-256 of the canonical JSON of everything that determines the stored numbers (model
fingerprint, removed set, items, format, dtype, drtframe version...), never of a model's name: a
model retrained under the same name gets new keys. Each value is written to a temporary file in the
same directory and renamed into place, so a crash (even `kill -9`) leaves either the whole file or
none; leftover temporary files are never read. Only the driver process writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..errors import DrtframeError


def content_key(payload: dict) -> str:
    """SHA-256 of the canonical JSON of `payload` (sorted keys, no whitespace)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from the user's group
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """Finished work under `root/cache/<kind>/<key>.json`."""

    def __init__(self, root: Path) -> None:
        self.root = root / "cache"

    def check_writable(self) -> None:
        """Create the store and prove a file can be written there, before any work is done."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomically(self.root / ".write-test", b"ok")
            (self.root / ".write-test").unlink()
        except OSError as exc:
            raise DrtframeError(f"cannot write results under {self.root.parent}: {exc.strerror or exc}") from None

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.json"

    def get(self, kind: str, key: str) -> dict | None:
        """The stored value, or None when it is missing or unreadable (then it is computed again)."""
        try:
            return json.loads(self._path(kind, key).read_text())
        except (OSError, ValueError):
            return None

    def put(self, kind: str, key: str, value: dict) -> None:
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(value).encode())
