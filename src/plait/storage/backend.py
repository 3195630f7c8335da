"""The handful of storage primitives plait needs, and what every backend shares.

Everything the store does is built from these: read, write (atomic, whole or nothing), create
(exclusive: fails if the key exists), exists, list, delete. Keys are ``/``-separated paths
relative to the store root. Three backends implement them:

- :class:`~plait.storage.local.LocalBackend` uses ``os`` directly (temporary file +
  ``os.replace`` for writes, temporary file + ``os.link`` for exclusive create, so readers never
  see half a record);
- :class:`~plait.storage.remote.MemoryBackend` for ``memory://`` (tests), with a process lock
  around create;
- :class:`~plait.storage.remote.FsspecBackend` for object stores, where one PUT is atomic and
  exclusive create is a conditional PUT (``If-None-Match: *`` on S3).

A filesystem that cannot create exclusively can be read but is refused for writing.
:func:`~plait.storage.urls.open_backend` picks the backend for a URL.
"""

from __future__ import annotations

import io
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import IO

from plait.base.ids import random_suffix
from plait.errors import StoreError, UnsupportedStoreError


def temporary_name(path: str) -> str:
    """Return a hidden temporary name beside ``path`` (``.<name>.<random>.tmp``) to write before renaming."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{random_suffix()}.tmp")


def write_local_file(path: str, data: bytes) -> None:
    """Write a local file atomically: to a temporary name beside it, then renamed into place."""
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        unlink_quietly(tmp)


def unlink_quietly(path: str) -> None:
    """Remove a file if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Backend(ABC):
    """Storage primitives over one root. Subclasses implement them for a kind of filesystem.

    :ivar url: the store URL as the user gave it.
    :ivar protocol: the fsspec protocol (``file``, ``memory``, ``s3``, …).
    """

    url: str
    protocol: str
    #: whether bytes may be written: only where :meth:`create` is really exclusive.
    writable: bool = True
    #: whether :meth:`local_path` gives real files (local fast paths: copy_file_range, reflink).
    is_local: bool = False

    @abstractmethod
    def read(self, key: str) -> bytes:
        """Return the bytes at ``key``; raise :class:`FileNotFoundError` if absent."""

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes ``start`` to ``end`` (exclusive) of ``key``; raise :class:`FileNotFoundError` if absent.

        Fewer bytes come back when ``key`` is shorter: the caller checks what it got.
        """
        return self.read(key)[start:end]

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Return ``{key: bytes}`` for the keys that exist, fetched concurrently where possible."""
        out = {}
        for key in keys:
            try:
                out[key] = self.read(key)
            except FileNotFoundError:
                pass
        return out

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically, replacing what is there."""

    def write_many(self, items: dict[str, bytes]) -> None:
        """Write many keys (each atomically); remote backends send them concurrently."""
        for key, data in items.items():
            self.write(key, data)

    def write_file(self, key: str, local_path: str, check: Callable[[IO[bytes]], None] | None = None) -> None:
        """Copy a local file to ``key`` atomically.

        :param check: called with the bytes about to be stored (as a file open for reading)
            before they become visible at ``key``; whatever it raises stops the write. A file
            that changes while it is copied cannot slip past a check of its copy.
        """
        with open(local_path, "rb") as f:
            data = f.read()
        if check is not None:
            check(io.BytesIO(data))
        self.write(key, data)

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Create ``key`` with ``data`` only if it does not exist; return whether it was created."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Tell whether ``key`` exists."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Return the size of ``key``; raise :class:`FileNotFoundError` if absent."""

    @abstractmethod
    def listdir(self, prefix: str) -> list[str]:
        """Return the names directly under ``prefix`` (files and folders), sorted; [] if none."""

    @abstractmethod
    def find(self, prefix: str) -> dict[str, int]:
        """Return ``{key: size}`` of every file below ``prefix``, recursively."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key`` if it exists."""

    def delete_many(self, keys: list[str]) -> None:
        """Delete many keys (those absent are skipped); object stores batch the requests."""
        for key in keys:
            self.delete(key)

    def stale_temporaries(self, prefix: str, older_than: float) -> dict[str, int]:
        """Return ``{key: size}`` of temporary files below ``prefix`` left by crashed writers.

        Only files last modified before ``older_than`` (a POSIX time) count. Object stores write
        with one PUT and leave none, so the default is empty.
        """
        return {}

    def get_to_file(self, key: str, local_path: str) -> None:
        """Copy ``key`` into a local file (the caller makes it atomic and verifies it)."""
        with open(local_path, "wb") as f:
            f.write(self.read(key))

    def local_path(self, key: str) -> str:
        """Return the local file path of ``key`` (local backends only)."""
        raise StoreError(f"{self.url} is not a local store")

    def modified(self, key: str) -> float | None:
        """Return the modification time of ``key`` as a POSIX timestamp, if known."""
        return None

    def touch(self, key: str) -> None:
        """Make ``key`` look just written (same bytes, new modification time).

        gc never deletes a key modified after the mark that condemned it, so a writer that
        reuses a stored blob touches it. The default writes the bytes again (one PUT).

        :raises FileNotFoundError: if ``key`` is absent (a gc took it: store it again).
        """
        self.write(key, self.read(key))

    def require_writable(self) -> None:
        """Raise unless this backend can create records exclusively.

        :raises UnsupportedStoreError: for filesystems without an exclusive create.
        """
        if not self.writable:
            raise UnsupportedStoreError(
                f"plait cannot write to {self.url}: the {self.protocol!r} filesystem has no exclusive "
                "create, so two writers could both take the same version number. Use a local folder, "
                "memory://, s3:// or gs:// for writing; this store can still be read."
            )
