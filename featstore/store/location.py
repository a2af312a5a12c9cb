"""Where a store lives (a local folder or an fsspec URL) and the few file operations on it; reading its group
with every chunk required and every crc32c checked (``DamagedStoreError`` instead of zeros or a traceback)."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import fsspec
import zarr
from zarr.codecs import Crc32cCodec
from zarr.registry import register_codec
from zarr.storage import FsspecStore, LocalStore, WrapperStore

from data_manifests.errors import FeatstoreError


def is_url(location: str | Path) -> bool:
    """An fsspec URL (``s3://bucket/x.zarr``, ``file:///data/x.zarr``, ``memory://x.zarr``), not a local path."""
    return isinstance(location, str) and "://" in location


class Location:
    """Where a store lives, and the few file operations the store and its staging area need.

    A local folder keeps os-level operations: a file is written to a temporary name, fsynced and
    renamed. An fsspec URL goes through fsspec: a file is serialized in memory, written with one PUT
    to a temporary key and then moved to its name; on object stores each object appears whole (a PUT
    and a server-side copy are atomic per object), on file-like backends the move is a rename. Either
    way a reader never sees half a file. fsspec settings (credentials, endpoints) come from the usual
    places, e.g. ``FSSPEC_S3='{"endpoint_url": ...}'`` or the AWS environment for s3fs.
    """

    def __init__(self, location: str | Path):
        self.is_url = is_url(location)
        if self.is_url:
            self.text = str(location).rstrip("/")
            self.storage_options = _storage_options(self.text)
            try:
                self.fs, self._root = fsspec.core.url_to_fs(self.text, **self.storage_options)
            except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
                raise FeatstoreError(f"cannot open {self.text}: {exc}") from exc
            self.path: Path | str = self.text
        else:
            self.path = Path(location)
            self.text = str(self.path)

    def __str__(self) -> str:
        return self.text

    def join(self, *names: str) -> Path | str:
        """A child location: a Path for local folders, a URL for remote ones."""
        if self.is_url:
            return "/".join([self.text, *names])
        return self.path.joinpath(*names)

    def _key(self, name: str) -> str:
        return f"{self._root}/{name}" if name else self._root

    # ------------------------------------------------------------------ queries
    def exists(self, name: str = "") -> bool:
        if self.is_url:
            return self.fs.exists(self._key(name))
        return self.path.joinpath(name).exists() if name else self.path.exists()

    def is_file(self, name: str) -> bool:
        if self.is_url:
            return self.fs.isfile(self._key(name))
        return self.path.joinpath(name).is_file()

    def is_empty_folder(self) -> bool:
        if self.is_url:
            return self.fs.isdir(self._root) and not self.fs.ls(self._root, detail=False)
        return self.path.is_dir() and not any(self.path.iterdir())

    def names(self, folder: str) -> list[str]:
        """File names (not paths) directly inside ``folder``; empty when it does not exist."""
        if self.is_url:
            if not self.fs.isdir(self._key(folder)):
                return []
            return sorted(p.rsplit("/", 1)[-1] for p in self.fs.ls(self._key(folder), detail=False))
        path = self.path / folder
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    def file_names(self) -> list[str]:
        """Every file under the location, as paths relative to it ('/'-separated), sorted."""
        if self.is_url:
            root = self._root.rstrip("/") + "/"
            return sorted(path[len(root):] for path in self.fs.find(self._root) if path.startswith(root))
        return sorted(path.relative_to(self.path).as_posix() for path in self.path.rglob("*") if path.is_file())

    def upload_folder(self, local: Path, last: str) -> None:
        """Copy the local folder ``local`` here, file by file (each whole: ``write_atomic``), its file ``last`` (what
        marks the folder complete) after all the others; then remove what is here and not in ``local``."""
        names = sorted(path.relative_to(local).as_posix() for path in local.rglob("*") if path.is_file())
        for name in sorted(names, key=lambda name: name == last):
            folder = name.rpartition("/")[0]
            if folder:
                self.makedirs(folder)
            self.write_atomic(name, lambda handle, name=name: handle.write((local / name).read_bytes()))
        for stale in set(self.file_names()) - set(names):  # e.g. a resumed run's older checkpoints
            self.remove(stale)

    def download(self, local: Path, names: list[str]) -> None:
        """Copy the files ``names`` (relative to here) into the local folder ``local``, keeping their paths."""
        for name in names:
            target = local / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read_bytes(name))

    # ------------------------------------------------------------------ reading
    def read_bytes(self, name: str) -> bytes:
        if self.is_url:
            return self.fs.cat_file(self._key(name))
        return self.path.joinpath(name).read_bytes()

    def open_read(self, name: str) -> BinaryIO:
        """A seekable binary file (a member of an .npz is then read without fetching the others)."""
        if self.is_url:
            return self.fs.open(self._key(name), "rb")
        return open(self.path / name, "rb")

    # ------------------------------------------------------------------ writing
    def makedirs(self, name: str = "") -> None:
        if self.is_url:
            self.fs.makedirs(self._key(name), exist_ok=True)  # a no-op on object stores
        else:
            self.path.joinpath(name).mkdir(parents=True, exist_ok=True)

    def write_atomic(self, name: str, write: Callable[[BinaryIO], None]) -> None:
        """Write a file whole or not at all: ``write(handle)`` fills a temporary that is then renamed."""
        if self.is_url:
            buffer = io.BytesIO()
            write(buffer)
            tmp = self._key(name + ".tmp")
            self.fs.pipe_file(tmp, buffer.getvalue())
            self.fs.mv(tmp, self._key(name))
            return
        final = self.path / name
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(final)

    def remove(self, name: str) -> None:
        if self.is_url:
            self.fs.rm_file(self._key(name))
        else:
            self.path.joinpath(name).unlink()

    def remove_tree(self, name: str = "") -> None:
        if self.is_url:
            if self.fs.exists(self._key(name)):
                self.fs.rm(self._key(name), recursive=True)
        else:
            shutil.rmtree(self.path.joinpath(name) if name else self.path)

    def open_group(self, mode: str) -> zarr.Group:
        if self.is_url:
            return zarr.open_group(self.text, mode=mode, storage_options=self.storage_options)
        return zarr.open_group(str(self.path), mode=mode)

    def open_group_for_reading(self) -> zarr.Group:
        """The group read-only, with every absent chunk an error instead of the fill value (for stores that
        record ``every_chunk_written``: there a missing chunk file is damage, never an all-zero chunk)."""
        if self.is_url:
            files = FsspecStore.from_url(self.text, storage_options=self.storage_options, read_only=True)
        else:
            files = LocalStore(self.path, read_only=True)
        return zarr.open_group(ChunksMustExist(files, self.text), mode="r")


class DamagedStoreError(FeatstoreError, ValueError):
    """A chunk a reader needs is absent or fails its checksum. A ValueError too, as zarr's own read errors
    are, so ``verify`` reports it among the other damage."""


def _is_chunk_key(key: str) -> bool:
    # zarr v3 default chunk keys: "<array path>/c/<i>/<j>" ("c" alone for a 0-d array); metadata is zarr.json
    return not key.endswith("zarr.json") and ("/c/" in f"/{key}" or key.endswith("/c") or key == "c")


class ChunksMustExist(WrapperStore):
    """Reads through to the store's files and refuses a chunk that is not there."""

    def __init__(self, store, label: str):
        super().__init__(store)
        self.label = label

    def _with_store(self, store) -> ChunksMustExist:
        return type(self)(store, self.label)

    async def get(self, key, prototype, byte_range=None):
        value = await self._store.get(key, prototype, byte_range)
        if value is None and _is_chunk_key(key):
            raise DamagedStoreError(
                f"{self.label}: chunk {key} is missing (the store is damaged; `featstore verify` lists all damage)")
        return value


class CheckedCrc32c(Crc32cCodec):
    """zarr's crc32c codec, failing a damaged chunk with featstore's one-line error instead of a traceback."""

    def _decode_sync(self, chunk_bytes, chunk_spec):
        try:
            return super()._decode_sync(chunk_bytes, chunk_spec)
        except ValueError as exc:
            raise DamagedStoreError(
                "a store chunk fails its crc32c checksum (the file is damaged; `featstore verify` on the "
                "stores this command read names it)") from exc


# Every crc32c chunk this process reads goes through the checked codec (stores name it "crc32c" either way).
register_codec("crc32c", CheckedCrc32c)
zarr.config.set({"codecs.crc32c": f"{CheckedCrc32c.__module__}.{CheckedCrc32c.__qualname__}"})


def _storage_options(url: str) -> dict:
    # fsspec's local filesystem does not create parent folders unless asked; object stores have none.
    protocol = url.split("://", 1)[0]
    return {"auto_mkdir": True} if protocol in ("file", "local") else {}
