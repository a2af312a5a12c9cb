"""A fake local Hugging Face cache, written in the layout huggingface_hub documents and writes
(https://huggingface.co/docs/hub/local-cache): nothing is downloaded."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def commit_hash(seed: int) -> str:
    """A made-up 40-hex commit id."""
    return hashlib.sha1(f"commit {seed}".encode()).hexdigest()


def cache_model(cache: Path, repo_id: str, source: Path, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """Put the files of the folder ``source`` into ``cache`` as one commit of ``repo_id``: each file's bytes in
    blobs/<sha256>, snapshots/<commit>/<name> a relative link to its blob, refs/<ref> the commit id (no newline,
    as huggingface_hub writes it). Returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for file in sorted(source.rglob("*")):
        if not file.is_file():
            continue
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        ref_file = repo / "refs" / ref
        ref_file.parent.mkdir(parents=True, exist_ok=True)
        ref_file.write_text(commit)
    return snapshot
