"""The handful of storage primitives plait needs, over any fsspec filesystem.

Everything the store does is built from these: read, write (atomic, whole or nothing), create
(exclusive: fails if the key exists), exists, list, delete. Keys are ``/``-separated paths
relative to the store root. Three backends implement them:

- :class:`LocalBackend` uses ``os`` directly (temporary file + ``os.replace`` for writes,
  temporary file + ``os.link`` for exclusive create, so readers never see half a record);
- :class:`MemoryBackend` for ``memory://`` (tests), with a process lock around create;
- :class:`FsspecBackend` for object stores, where one PUT is atomic and exclusive create is a
  conditional PUT (``If-None-Match: *`` on S3).

A filesystem that cannot create exclusively can be read but is refused for writing.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import sys
import threading
from abc import ABC, abstractmethod
from typing import Any

from plait.errors import StoreError, StoreUnreachableError, UnsupportedStoreError
from plait.base.ids import random_suffix
from plait.base.parallel import BATCH_FILES, parallel_map

#: Protocols whose conditional PUT plait trusts for exclusive create.
EXCLUSIVE_PROTOCOLS = {"s3", "s3a", "gcs", "gs"}

#: Threads for :meth:`LocalBackend.read_many` (waits on the disk, not the CPU).
READ_WORKERS = 8

_EXTRAS = {"s3": "s3", "s3a": "s3", "gcs": "gcs", "gs": "gcs", "az": "azure", "abfs": "azure", "adl": "azure"}


#: ``ioctl(FICLONE)``: a copy-on-write clone (reflink) on btrfs, XFS, bcachefs, OCFS2.
_FICLONE = 0x40049409
#: Devices where a clone was refused (ext4, tmpfs, …): not asked again in this process.
_NO_CLONE: set[int] = set()


def clone_file(src: str, dst: str) -> None:
    """Copy ``src`` to a new file ``dst``: a reflink where the filesystem can, else an in-kernel copy.

    A reflink shares the data blocks until either file is written, so a store copy costs no
    bytes and no time, and an edit of the user's file later never reaches the store (unlike a
    hard link, which plait never makes). Elsewhere ``shutil.copyfile`` uses ``sendfile``.
    """
    if sys.platform == "linux":
        dev = os.stat(os.path.dirname(dst) or ".").st_dev  # one stat, not two opens, once refused
        if dev not in _NO_CLONE:
            import fcntl

            with open(src, "rb") as fin, open(dst, "wb") as fout:
                try:
                    fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
                    return
                except OSError:
                    _NO_CLONE.add(dev)
    shutil.copyfile(src, dst)


def temporary_name(path: str) -> str:
    """Return a hidden temporary name beside ``path`` (``.<name>.<random>.tmp``) to write before renaming."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{random_suffix()}.tmp")


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

    def write_file(self, key: str, local_path: str) -> None:
        """Copy a local file to ``key`` atomically."""
        with open(local_path, "rb") as f:
            self.write(key, f.read())

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


class LocalBackend(Backend):
    """Primitives on a local folder, using ``os`` directly."""

    is_local = True

    def __init__(self, url: str, root: str) -> None:
        self.url = url
        self.protocol = "file"
        self.root = os.path.abspath(root)

    def local_path(self, key: str) -> str:
        """Return the local file path of ``key``."""
        return os.path.join(self.root, *key.split("/"))

    def read(self, key: str) -> bytes:
        """Return the bytes at ``key``."""
        try:
            with open(self.local_path(key), "rb") as f:
                return f.read()
        except (IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(key) from None

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Return ``{key: bytes}`` for the keys that exist, read on a few threads.

        Small records are handed out in batches (one task per file costs more than the file); on
        a cold disk or a network filesystem the threads overlap the waits.
        """
        if len(keys) < 2 * BATCH_FILES:
            return super().read_many(keys)
        batches = [keys[i : i + BATCH_FILES] for i in range(0, len(keys), BATCH_FILES)]
        out: dict[str, bytes] = {}
        for got in parallel_map(super().read_many, batches, READ_WORKERS):
            out.update(got)
        return out

    def _place(self, key: str, fill: Any, *, exclusive: bool) -> bool:
        path = self.local_path(key)
        tmp = temporary_name(path)
        try:
            fill(tmp)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fill(tmp)
        try:
            if not exclusive:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        finally:
            if exclusive or os.path.exists(tmp):
                unlink_quietly(tmp)

    def write(self, key: str, data: bytes) -> None:
        """Write ``data`` to a temporary file beside ``key`` and rename it into place."""

        def fill(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        self._place(key, fill, exclusive=False)

    def write_file(self, key: str, local_path: str) -> None:
        """Copy a local file into place (``copy_file_range`` / reflink where the OS offers them)."""
        self._place(key, lambda tmp: clone_file(local_path, tmp), exclusive=False)

    def create(self, key: str, data: bytes) -> bool:
        """Create ``key`` exclusively: the whole record appears at once, or not at all."""

        def fill(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        return self._place(key, fill, exclusive=True)

    def exists(self, key: str) -> bool:
        """Tell whether ``key`` exists."""
        return os.path.isfile(self.local_path(key))

    def size(self, key: str) -> int:
        """Return the size of ``key``."""
        return os.stat(self.local_path(key)).st_size

    def modified(self, key: str) -> float | None:
        """Return the mtime of ``key``."""
        try:
            return os.stat(self.local_path(key)).st_mtime
        except FileNotFoundError:
            return None

    def touch(self, key: str) -> None:
        """Set the mtime of ``key`` to now (the bytes stay as they are).

        :raises FileNotFoundError: if ``key`` is absent.
        """
        os.utime(self.local_path(key))

    def listdir(self, prefix: str) -> list[str]:
        """Return the names under ``prefix``, skipping temporary files."""
        try:
            return sorted(n for n in os.listdir(self.local_path(prefix)) if not n.endswith(".tmp"))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def find(self, prefix: str) -> dict[str, int]:
        """Return ``{key: size}`` of every file below ``prefix``."""
        base = self.local_path(prefix)
        out: dict[str, int] = {}
        for dirpath, _, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in files:
                if name.endswith(".tmp"):
                    continue
                try:
                    out[name if rel == "." else f"{rel}/{name}"] = os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass
        return out

    def delete(self, key: str) -> None:
        """Delete ``key`` if present."""
        unlink_quietly(self.local_path(key))

    def stale_temporaries(self, prefix: str, older_than: float) -> dict[str, int]:
        """Return ``{key: size}`` of ``.tmp`` files below ``prefix`` older than ``older_than``."""
        out: dict[str, int] = {}
        for dirpath, _, files in os.walk(self.local_path(prefix)):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    try:
                        st = os.stat(os.path.join(dirpath, name))
                    except FileNotFoundError:
                        continue
                    if st.st_mtime < older_than:
                        out[f"{rel}/{name}"] = st.st_size
        return out

    def get_to_file(self, key: str, local_path: str) -> None:
        """Copy the stored file out."""
        shutil.copyfile(self.local_path(key), local_path)


#: Exception class names (botocore, aiohttp, gcsfs, the builtins) that mean the endpoint or the
#: credentials do not work, not that a key is missing.
_UNREACHABLE = {
    "EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError", "ProxyConnectionError",
    "ClientConnectorError", "ClientConnectionError", "ServerDisconnectedError", "ServerTimeoutError",
    "ConnectionRefusedError", "ConnectionResetError", "TimeoutError",
}
_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "DefaultCredentialsError"}


def unreachable_error(exc: BaseException, url: str, endpoint: str | None = None) -> StoreUnreachableError | None:
    """Return the one-line error for a connection or credentials failure, or None for anything else.

    :param exc: what the filesystem raised.
    :param url: the store URL.
    :param endpoint: the endpoint URL the store was opened with, if any.
    :returns: a :class:`StoreUnreachableError` saying what to check, or ``None``.
    """
    if isinstance(exc, (FileNotFoundError, StoreError)):
        return None
    where = f"{url} at {endpoint}" if endpoint else url
    seen: BaseException | None = exc
    while seen is not None:
        names = {c.__name__ for c in type(seen).__mro__}
        if names & _NO_CREDENTIALS:
            return StoreUnreachableError(
                f"no credentials for {where}: set them in the environment (e.g. AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY) or pass --store-option key=... --store-option secret=...", url=url)
        if names & _UNREACHABLE:
            return StoreUnreachableError(
                f"cannot reach {where} ({type(seen).__name__}): check --store-option client_kwargs.endpoint_url, "
                "the network and the credentials", url=url)
        if isinstance(seen, PermissionError):
            return StoreUnreachableError(
                f"{where} refused access ({seen}): check the credentials (--store-option key=/secret= or the "
                "environment) and the bucket's permissions", url=url)
        seen = seen.__cause__ or seen.__context__
    return None


def _translate_errors(cls: type) -> type:
    """Wrap the public methods of a remote backend so connection failures become one clear error."""

    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                err = unreachable_error(exc, self.url, self.endpoint)
                if err is None:
                    raise
                raise err from exc

        return wrapper

    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_"):
            setattr(cls, name, wrap(value))
    return cls


@_translate_errors
class FsspecBackend(Backend):
    """Primitives on any fsspec filesystem; writable where create is exclusive.

    :param url: the store URL.
    :param fs: the fsspec filesystem.
    :param root: the root path on that filesystem, without protocol.
    """

    def __init__(self, url: str, fs: Any, root: str) -> None:
        self.url = url
        self.fs = fs
        protocol = fs.protocol
        self.protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
        self.root = root.rstrip("/")
        self.writable = self.protocol in EXCLUSIVE_PROTOCOLS
        self.endpoint: str | None = getattr(fs, "endpoint_url", None) or (getattr(fs, "client_kwargs", None) or {}).get("endpoint_url")

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def _key(self, path: str) -> str:
        path = self.fs._strip_protocol(path)
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    def read(self, key: str) -> bytes:
        """Return the bytes at ``key``."""
        return self.fs.cat_file(self._path(key))

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Fetch many keys in one concurrent batch (s3fs runs them in parallel)."""
        if not keys:
            return {}
        got = self.fs.cat([self._path(k) for k in keys], on_error="omit")
        return {self._key(p): v for p, v in got.items() if isinstance(v, bytes)}

    def write(self, key: str, data: bytes) -> None:
        """Write with one PUT, which object stores make visible whole or not at all.

        :raises UnsupportedStoreError: on a filesystem without exclusive create (read-only).
        """
        self.require_writable()
        self.fs.pipe_file(self._path(key), data)

    def write_many(self, items: dict[str, bytes]) -> None:
        """Write many keys in one concurrent batch (s3fs sends the PUTs in parallel)."""
        if items:
            self.require_writable()
            self.fs.pipe({self._path(k): v for k, v in items.items()})

    def create(self, key: str, data: bytes) -> bool:
        """Create with a conditional PUT (``If-None-Match: *``); ``False`` if the key exists.

        s3fs raises :class:`FileExistsError` for the 412 answer. A PUT that the client retried
        after a lost response can meet its own first attempt: when the object there holds
        exactly ``data`` (records carry a unique id and time, so no other writer's can), the
        create is ours and counts as done.
        """
        self.require_writable()
        try:
            self.fs.pipe_file(self._path(key), data, mode="create")
        except FileExistsError:
            pass
        except OSError as exc:
            if not _is_precondition_failure(exc):
                raise
        else:
            return True
        try:
            return bytes(self.read(key)) == bytes(data)
        except FileNotFoundError:
            return False

    def exists(self, key: str) -> bool:
        """Tell whether ``key`` exists."""
        return self.fs.isfile(self._path(key))

    def size(self, key: str) -> int:
        """Return the size of ``key``."""
        return int(self.fs.info(self._path(key))["size"])

    def listdir(self, prefix: str) -> list[str]:
        """Return the names directly under ``prefix``."""
        try:
            items = self.fs.ls(self._path(prefix), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in items)

    def find(self, prefix: str) -> dict[str, int]:
        """Return ``{key: size}`` below ``prefix``."""
        try:
            found = self.fs.find(self._path(prefix), detail=True)
        except FileNotFoundError:
            return {}
        return {self._key(p): int(info.get("size") or 0) for p, info in found.items() if info.get("type") != "directory"}

    def delete(self, key: str) -> None:
        """Delete ``key`` if present."""
        self.require_writable()
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def delete_many(self, keys: list[str]) -> None:
        """Delete many keys in batched requests (s3fs sends up to 1,000 per DeleteObjects)."""
        if keys:
            self.require_writable()
            try:
                self.fs.rm([self._path(k) for k in keys])
            except FileNotFoundError:
                super().delete_many(keys)  # some were gone already: the rest one by one

    def modified(self, key: str) -> float | None:
        """Return the modification time of ``key``, if the filesystem reports one."""
        try:
            value = self.fs.modified(self._path(key))
        except (FileNotFoundError, NotImplementedError, OSError):
            return None
        return value.timestamp() if value is not None else None


def _serialized(cls: type) -> type:
    """Hold the class's ``_lock`` around each of its storage primitives.

    fsspec's memory filesystem is one shared dict: listing it while another thread writes (the
    event writer, a user's threads) fails with "dictionary changed size during iteration".
    """

    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(self, *args, **kwargs)

        return wrapper

    for name in ("read", "read_many", "write", "write_many", "write_file", "create", "exists", "size", "listdir",
                 "find", "delete", "delete_many", "modified", "touch", "get_to_file", "stale_temporaries"):
        if hasattr(cls, name):
            setattr(cls, name, wrap(getattr(cls, name)))
    return cls


@_serialized
class MemoryBackend(FsspecBackend):
    """``memory://`` stores: process-local, so one lock makes create exclusive and listing safe."""

    _lock = threading.RLock()

    def __init__(self, url: str, fs: Any, root: str) -> None:
        super().__init__(url, fs, root)
        self.writable = True

    def create(self, key: str, data: bytes) -> bool:
        """Create ``key`` under the process lock."""
        with self._lock:
            if self.fs.exists(self._path(key)):
                return False
            self.fs.pipe_file(self._path(key), data)
            return True

    def read(self, key: str) -> bytes:
        """Return the bytes at ``key`` (a copy; memory files are shared objects)."""
        return bytes(self.fs.cat_file(self._path(key)))


def open_backend(url: str, storage_options: dict[str, Any] | None = None) -> Backend:
    """Return the backend for a store URL.

    :param url: a local path or any fsspec URL.
    :param storage_options: passed to the fsspec filesystem (credentials, endpoint, …).
    :raises UnsupportedStoreError: for an unknown protocol, with the ``pip install`` hint.
    """
    if "://" not in url or url.startswith(("file://", "local://")):
        path = url.split("://", 1)[1] if "://" in url else url
        return LocalBackend(url, os.path.expanduser(path))
    import fsspec
    from fsspec.core import url_to_fs

    protocol = url.split("://", 1)[0]
    options = dict(storage_options or {})
    retries = options.pop("retries", None)  # s3fs takes it as an attribute, not an argument
    try:
        fs, root = url_to_fs(url, **options)
    except (ValueError, ImportError) as exc:
        if protocol not in fsspec.available_protocols() and protocol not in _EXTRAS:
            raise UnsupportedStoreError(
                f"unknown store protocol {protocol!r} in {url!r}; use a local path, memory://, s3://, gs:// or az://"
            ) from None
        extra = _EXTRAS.get(protocol, protocol)
        raise UnsupportedStoreError(
            f"the {protocol!r} store needs an extra package: pip install 'plait[{extra}]' ({exc})"
        ) from None
    if retries is not None and hasattr(fs, "retries"):
        fs.retries = max(1, int(retries))
    if protocol == "memory":
        return MemoryBackend(url, fs, root)
    return FsspecBackend(url, fs, root)


def unlink_quietly(path: str) -> None:
    """Remove a file if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _is_precondition_failure(exc: BaseException) -> bool:
    """Tell whether an error is the store refusing a conditional create because the key exists.

    s3fs maps a 412 whose condition it cannot name to ``OSError(EINVAL)``; the boto error it
    wraps (``__cause__``) says ``PreconditionFailed``. Nothing else counts: a failed PUT must
    not pass for "someone else took this number".
    """
    if getattr(exc, "errno", None) == errno.EEXIST:
        return True
    response = getattr(exc.__cause__, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return error.get("Code") == "PreconditionFailed" or status == 412
    return False

