"""Hugging Face model ids (``org/name`` or ``org/name@revision``) found in the local Hugging Face cache.

Only the cache already on disk is read; nothing is ever downloaded. The layout is the one huggingface_hub
writes and documents (https://huggingface.co/docs/hub/local-cache):
``<cache>/models--<org>--<name>/refs/<revision>`` holds a commit hash, ``snapshots/<commit>/`` the repository's
files at that commit. Read here directly, so a model fetched once with ``hf download`` (or by transformers)
loads without huggingface_hub installed and without any network code on the path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from data_manifests.errors import FeatstoreError

DEFAULT_REVISION = "main"
# huggingface_hub's repo-id rule (letters, digits, '-', '_', '.'; at most 96 characters a part), with the
# namespace required here: a bare 'name' is far more likely a mistyped file name than a legacy model id.
_REPO_PART = r"[A-Za-z0-9_](?:[\w.-]{0,94}[A-Za-z0-9_])?"
MODEL_ID = re.compile(rf"(?P<repo_id>{_REPO_PART}/{_REPO_PART})(?:@(?P<revision>[\w./-]+))?")
COMMIT_HASH = re.compile(r"[0-9a-f]{40}")
# a mistyped relative checkpoint path (ckpt/vit_b.pth) also matches org/name: these endings make it a path
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pth.tar", ".tar", ".safetensors", ".bin", ".ckpt", ".pkl", ".npz")


@dataclass(frozen=True)
class HubSnapshot:
    """A cached model repository at one commit: where its files are, and what to record about them."""

    repo_id: str
    revision: str  # as asked for: a branch, a tag or a commit hash
    commit: str
    path: Path  # <cache>/models--<org>--<name>/snapshots/<commit>

    def to_json(self) -> dict:
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit}


def parse_model_id(value: str) -> tuple[str, str] | None:
    """``org/name[@revision]`` -> (repo id, revision, 'main' when not given); None for anything else."""
    match = MODEL_ID.fullmatch(value)
    if match is None or "--" in match["repo_id"] or ".." in value or value.lower().endswith(CHECKPOINT_SUFFIXES):
        return None
    return match["repo_id"], match["revision"] or DEFAULT_REVISION


def hub_cache_dir() -> tuple[Path, str]:
    """The Hugging Face hub cache and the setting that chose it, in huggingface_hub's order: $HF_HUB_CACHE,
    $HUGGINGFACE_HUB_CACHE (its older name), $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub,
    ~/.cache/huggingface/hub."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return _expanded(os.environ[variable]), f"${variable}"
    if os.environ.get("HF_HOME"):
        return _expanded(os.environ["HF_HOME"]) / "hub", "$HF_HOME/hub"
    if os.environ.get("XDG_CACHE_HOME"):
        return _expanded(os.environ["XDG_CACHE_HOME"]) / "huggingface" / "hub", "$XDG_CACHE_HOME/huggingface/hub"
    return Path.home() / ".cache" / "huggingface" / "hub", "the default location"


def _expanded(setting: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(setting)))


def cached_snapshot(model_id: str) -> HubSnapshot:
    """The local snapshot folder of ``org/name[@revision]``, or one line naming the id and where it looked."""
    parsed = parse_model_id(model_id)
    if parsed is None:
        raise FeatstoreError(f"{model_id!r} is not a Hugging Face model id (org/name or org/name@revision)")
    repo_id, revision = parsed
    cache, chosen_by = hub_cache_dir()
    repo_folder = cache / ("models--" + repo_id.replace("/", "--"))
    if COMMIT_HASH.fullmatch(revision):
        commit = revision
    else:
        ref = repo_folder / "refs" / revision
        if not ref.is_file():
            raise _not_cached(model_id, cache, chosen_by, ref)
        commit = ref.read_text().strip()
    snapshot = repo_folder / "snapshots" / commit
    if not COMMIT_HASH.fullmatch(commit) or not snapshot.is_dir():
        raise _not_cached(model_id, cache, chosen_by, snapshot)
    return HubSnapshot(repo_id, revision, commit, snapshot)


def _not_cached(model_id: str, cache: Path, chosen_by: str, missing: Path) -> FeatstoreError:
    repo_id, revision = parse_model_id(model_id)
    fetch = f"hf download {repo_id}" + ("" if revision == DEFAULT_REVISION else f" --revision {revision}")
    return FeatstoreError(
        f"{model_id!r} is neither a local path nor a Hugging Face model in the local cache {cache} (from "
        f"{chosen_by}): no {missing}; fetch it once where there is a network ({fetch}), or pass a local folder"
    )
