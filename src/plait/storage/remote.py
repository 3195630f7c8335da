"""FsspecBackend and MemoryBackend: the storage primitives on fsspec filesystems.

Object stores (S3, GCS, …) write each key with one atomic PUT and create exclusively with a
conditional PUT. A connection or credentials failure becomes one clear
:class:`~plait.errors.StoreUnreachableError`.
"""

from __future__ import annotations

import errno
import functools
import inspect
import threading
from typing import Any

from plait.errors import StoreError, StoreUnreachableError
from plait.storage.backend import Backend

#: Protocols whose conditional PUT plait trusts for exclusive create.
EXCLUSIVE_PROTOCOLS = {"s3", "s3a", "gcs", "gs"}

#: Protocols served by s3fs: its ``find`` takes a name prefix, and its ``cat_file`` of a whole
#: object asks for the size first (a HEAD) unless told to read in one stream.
_S3FS = {"s3", "s3a"}

#: Exception class names (botocore, aiohttp, gcsfs, the builtins) that mean the endpoint or the
#: credentials do not work, not that a key is missing.
_UNREACHABLE = {
    "EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError", "ProxyConnectionError",
    "ClientConnectorError", "ClientConnectionError", "ServerDisconnectedError", "ServerTimeoutError",
    "ConnectionRefusedError", "ConnectionResetError", "TimeoutError",
}
_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "DefaultCredentialsError"}


def _takes(fs: Any, method: str, option: str) -> bool:
    """Tell whether ``fs.<method>`` takes ``option`` (a keyword a newer s3fs added)."""
    try:
        return option in inspect.signature(getattr(fs, method)).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def failure_kind(exc: BaseException) -> tuple[str, BaseException] | None:
    """Tell why a filesystem call failed: ``credentials``, ``unreachable`` or ``denied``, with the
    exception (``exc`` or one of its causes) that says so; ``None`` for anything else (a missing
    key included).

    :param exc: what the filesystem raised.
    """
    if isinstance(exc, (FileNotFoundError, StoreError)):
        return None
    seen: BaseException | None = exc
    while seen is not None:
        names = {c.__name__ for c in type(seen).__mro__}
        if names & _NO_CREDENTIALS:
            return "credentials", seen
        if names & _UNREACHABLE:
            return "unreachable", seen
        if isinstance(seen, PermissionError):
            return "denied", seen
        seen = seen.__cause__ or seen.__context__
    return None


def unreachable_error(exc: BaseException, url: str, endpoint: str | None = None) -> StoreUnreachableError | None:
    """Return the one-line error for a connection or credentials failure, or None for anything else.

    :param exc: what the filesystem raised.
    :param url: the store URL.
    :param endpoint: the endpoint URL the store was opened with, if any.
    :returns: a :class:`StoreUnreachableError` saying what to check, or ``None``.
    """
    found = failure_kind(exc)
    if found is None:
        return None
    kind, seen = found
    where = f"{url} at {endpoint}" if endpoint else url
    if kind == "credentials":
        return StoreUnreachableError(
            f"no credentials for {where}: set them in the environment (e.g. AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY) or pass --store-option key=... --store-option secret=...", url=url)
    if kind == "unreachable":
        return StoreUnreachableError(
            f"cannot reach {where} ({type(seen).__name__}): check --store-option client_kwargs.endpoint_url, "
            "the network and the credentials", url=url)
    return StoreUnreachableError(
        f"{where} refused access ({seen}): check the credentials (--store-option key=/secret= or the "
        "environment) and the bucket's permissions", url=url)


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
        # records, events and index files are read whole: one GET each, no HEAD to size them first
        self._whole: dict[str, Any] = {"max_concurrency": 1} if _takes(fs, "_cat_file", "max_concurrency") else {}

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def _key(self, path: str) -> str:
        path = self.fs._strip_protocol(path)
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    def read(self, key: str) -> bytes:
        """Return the bytes at ``key``."""
        return self.fs.cat_file(self._path(key), **self._whole)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes ``start`` to ``end`` of ``key`` with one ranged GET."""
        return bytes(self.fs.cat_file(self._path(key), start=start, end=end))

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Fetch many keys in one concurrent batch (s3fs runs them in parallel); a missing key is
        left out. One GET each: ``cat`` would first ask for each key's size."""
        if not keys:
            return {}
        got = self.fs.cat_ranges([self._path(k) for k in keys], None, None, on_error="return", **self._whole)
        out = {}
        for key, value in zip(keys, got):
            if isinstance(value, FileNotFoundError):
                continue
            if isinstance(value, BaseException):
                raise value
            out[key] = bytes(value)
        return out

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
        data = bytes(data)  # an index file is built in a bytearray; the client sends bytes (no copy for bytes)
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
        """Return ``{key: size}`` below ``prefix``.

        On S3 this is one listing: s3fs asks whether an empty folder is a file (a HEAD and one
        more listing) unless the folder is given as a name prefix of its parent.
        """
        path = self._path(prefix)
        try:
            if prefix and self.protocol in _S3FS:
                parent, _, name = path.rpartition("/")
                found = self.fs.find(parent, prefix=name + "/", detail=True)
            else:
                found = self.fs.find(path, detail=True)
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

    for name in ("read", "read_range", "read_many", "write", "write_many", "write_file", "create", "exists", "size", "listdir",
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
