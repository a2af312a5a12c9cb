"""The single-writer lock of a store: ``<store>.lock`` beside it, naming the one process writing it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from data_manifests.errors import FeatstoreError
from featstore.store.layout import utc_now
from featstore.store.location import Location

LOCK_SUFFIX = ".lock"  # the writer lock beside the store: runs/x.zarr -> runs/x.zarr.lock


class StoreLockedError(FeatstoreError):
    """Another process is writing the store."""


@dataclass(frozen=True)
class LockOwner:
    pid: int
    host: str
    since: str

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host}, since {self.since}"

    def is_gone(self) -> bool:
        """The owner ran on this host and no longer runs (a lock from another host cannot be checked)."""
        if self.host != socket.gethostname() or self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by another user
            return False
        return False


class StoreLock:
    """The single-writer lock of a store: a file ``<store>.lock`` beside it naming its owner (pid, host, since).

    Created whole or not at all and only if absent (O_CREAT|O_EXCL locally; fsspec's ``xb`` mode for a
    URL, as atomic as the backend's create-if-absent); released on exit and on errors. A kill -9 leaves
    the file behind: the next writer on the same host sees its pid gone and takes it over, saying so on
    stderr. A lock left by another host cannot be checked: its message says to delete it once that
    process is known to be gone. It lives beside the store rather than in it, so that ``--overwrite``
    can delete the whole store without dropping the lock, and a folder that is not a store is never
    written into. Re-entrant within a process: extract holds it and calls finalize_store, which takes it too.
    """

    _depth: dict[str, int] = {}  # lock files this process holds -> how many holders deep

    def __init__(self, store: str | Path):
        location = Location(store)
        self.store = location.text
        self.path = location.text + LOCK_SUFFIX
        self._fs = location.fs if location.is_url else None
        self._key = location._key("") + LOCK_SUFFIX if location.is_url else self.path
        self.owner: LockOwner | None = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        if self._depth.get(self.path):
            self._depth[self.path] += 1
            return
        owner = LockOwner(os.getpid(), socket.gethostname(), utc_now())
        while not self._create(owner):
            current = self._read()
            if current is None:  # released meanwhile: try again
                continue
            if not current.is_gone():
                raise StoreLockedError(
                    f"{self.store} is being written by another process ({current}); wait for it to finish, "
                    f"or delete {self.path} if that process is gone"
                )
            if self._take_over(current):
                print(f"note: taking over the lock {self.path} of {current}: that process is gone", file=sys.stderr)
        self.owner = owner
        self._depth[self.path] = 1

    def release(self) -> None:
        depth = self._depth.get(self.path, 0) - 1
        if depth > 0:
            self._depth[self.path] = depth
            return
        self._depth.pop(self.path, None)
        if self.owner is not None and self._read() == self.owner:  # never another writer's lock
            self._remove(self._key)
        self.owner = None

    def _create(self, owner: LockOwner) -> bool:
        data = json.dumps({"pid": owner.pid, "host": owner.host, "since": owner.since}).encode()
        try:
            if self._fs is not None:
                with self._fs.open(self._key, "xb") as handle:
                    handle.write(data)
                return True
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(handle, data)
            os.fsync(handle)
        finally:
            os.close(handle)
        return True

    def _read(self, key: str | None = None) -> LockOwner | None:
        """The owner a lock file names; None when there is none. Re-read briefly while a new lock is being
        written (it is empty between its creation and its one write)."""
        key = key or self._key
        for attempt in range(20):
            try:
                data = self._fs.cat_file(key) if self._fs is not None else Path(key).read_bytes()
            except FileNotFoundError:
                return None
            try:
                record = json.loads(data)
                return LockOwner(int(record["pid"]), str(record["host"]), str(record["since"]))
            except (ValueError, KeyError, TypeError):
                time.sleep(0.05)
        raise StoreLockedError(f"{self.store} has an unreadable lock file {self.path}; delete it if no process writes the store")

    def _take_over(self, stale: LockOwner) -> bool:
        """Remove a dead owner's lock, unless another writer replaced it meanwhile (then the loop sees theirs)."""
        if self._fs is not None:  # no atomic rename on object stores: two writers taking over at once may race
            self._remove(self._key)
            return True
        aside = f"{self.path}.{os.getpid()}.stale"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:  # another writer moved it first
            return False
        if self._read(aside) != stale:  # a live lock made after we read the stale one: put it back
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
            os.unlink(aside)
            return False
        os.unlink(aside)
        return True

    def _remove(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self._fs is not None:
                self._fs.rm_file(key)
            else:
                os.unlink(key)
