"""SHA-256 of a file, read in 1 MiB blocks: encoder weights (``featstore.encoders``) and the files of
anonymizer runs (``anonymize.checkpoint``), whose hashes stores record as provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
