"""Sources: the places references point at, outside the store — listed, looked up and read.

A reference is data that stays where it is (a bucket, a web server, a local folder). This module
does the I/O against those places; it never decides whether a place may be read
(:mod:`plait.store.refpolicy` does that first). Each kind of place is a :class:`Source`:

- local files (:class:`LocalSource`): ``stat`` gives the identity (size, mtime in ns, inode); a
  read checks it on the open file before the first byte is copied and again after the last;
- S3 (:class:`plait.storage.s3source.S3Source`): one listing of object versions gives every
  object's ETag and VersionId, a read is one GET of the pinned version (or ``If-Match`` the
  recorded ETag);
- HTTP(S) (:class:`plait.storage.httpsource.HttpSource`): HEAD for the identity, a GET checked
  by its headers before a byte is kept, redirects only where the caller allows;
- any other fsspec filesystem (:class:`FsspecSource`: ``gs``, ``az``, …): ``find``/``info`` for the
  identity, ``open`` to read, the identity checked before and after.

What a source says about one object is an :class:`ObjectInfo`. Failures become one-line
errors: :class:`~plait.errors.NotFoundError` for nothing there, :class:`~plait.errors.SourceError`
for missing credentials, an unreachable endpoint or a refusal.
"""

from __future__ import annotations

import os
import shutil
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from plait.base.parallel import parallel_map
from plait.base.places import parse_place
from plait.errors import InvalidInputError, NotFoundError, PlaitError, SourceError
from plait.storage.remote import failure_kind

#: How many objects a prefix may expand to unless the caller says otherwise.
MAX_OBJECTS = 100_000
#: Lookups in flight at once against one remote source.
HEAD_CONCURRENCY = 32
#: Bytes per read when copying an object.
COPY_BUFFER = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """What a source says about one object now.

    :ivar uri: the object's full URI (``s3://bucket/key``, ``file:///path``, ``https://…``).
    :ivar size: its length in bytes.
    :ivar etag: its ETag or checksum (quotes removed), when the source gives one.
    :ivar version_id: its version (S3 VersionId, GCS generation), on versioned sources.
    :ivar mtime: its modification time as text (ns since the epoch for local files).
    :ivar inode: its inode (local files).
    :ivar latest: whether it is the current version (a listing of every version has older ones).
    """

    uri: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    mtime: str | None = None
    inode: int | None = None
    latest: bool = True


#: Called with what a source says about an object just before its bytes are read (and, where the
#: source allows, just after): raises to stop the read.
Check = Callable[[ObjectInfo], None]


class TooManyObjects(Exception):
    """Raised inside a listing that found more objects than allowed (turned into an error by :meth:`Source.list`)."""


class Source(ABC):
    """The objects of one kind of place, read with one set of options.

    :ivar endpoint: the endpoint URL the options name, if any (for messages).
    """

    endpoint: str | None = None

    def list(self, uri: str, max_objects: int = MAX_OBJECTS) -> list[ObjectInfo]:
        """Return the object at ``uri``, or every object below it when it is a folder or prefix, by URI.

        :param max_objects: refuse a prefix holding more objects than this.
        :raises NotFoundError: if nothing is there.
        :raises InvalidInputError: if the prefix holds more than ``max_objects`` objects.
        :raises SourceError: for missing credentials, an unreachable endpoint or a refusal.
        """
        try:
            found = self._list(uri, max_objects)
        except TooManyObjects:
            raise InvalidInputError(
                f"{uri} holds more than {max_objects:,} objects; reference a narrower prefix or raise the bound "
                "(add_reference(..., max_objects=N), plait log --reference --max-objects N)") from None
        except PlaitError:
            raise
        except FileNotFoundError:
            raise NotFoundError(f"nothing exists at {uri}; check the URL and your credentials", name=uri) from None
        except Exception as exc:
            raise self.error(exc, uri) from None
        if not found:
            raise NotFoundError(f"{uri} is an empty folder or prefix; there is nothing to reference", name=uri)
        return sorted(found, key=lambda o: o.uri)

    def head(self, uri: str, version_id: str | None = None) -> ObjectInfo | None:
        """Return what the source says about one object (one version, if given) now, or ``None`` if it is gone.

        :raises SourceError: for missing credentials, an unreachable endpoint or a refusal.
        """
        try:
            return self._head(uri, version_id)
        except FileNotFoundError:
            return None
        except PlaitError:
            raise
        except Exception as exc:
            raise self.error(exc, uri) from None

    def heads(self, items: list[tuple[str, str | None]]) -> list[ObjectInfo | None | SourceError]:
        """:meth:`head` many objects concurrently; a failure is returned in its place, not raised."""

        def one(item: tuple[str, str | None]) -> ObjectInfo | None | SourceError:
            try:
                return self.head(*item)
            except SourceError as exc:
                return exc

        return parallel_map(one, items, HEAD_CONCURRENCY)

    def listing(self, prefix: str, *, versions: bool, limit: int) -> list[ObjectInfo] | None:
        """Return every object below ``prefix`` (every version, with ``versions``), or ``None`` when
        there are more than ``limit`` or the source cannot list (then look objects up one by one).

        :raises SourceError: for missing credentials, an unreachable endpoint or a refusal.
        """
        return None

    def read(self, uri: str, out: BinaryIO, check: Check, version_id: str | None = None, etag: str | None = None) -> ObjectInfo:
        """Copy one object's bytes to ``out`` (anything with ``write``), calling ``check`` with its identity first.

        :param version_id: read this version (exact bytes, whatever happened since).
        :param etag: read only if the object still has this ETag, where the source can ask.
        :returns: what the source said about the bytes read.
        :raises NotFoundError: if the object (or that version) is gone.
        :raises SourceError: for missing credentials, an unreachable endpoint or a refusal.
        """
        try:
            return self._read(uri, out, check, version_id, etag)
        except FileNotFoundError:
            raise NotFoundError(f"{uri} no longer exists", name=uri) from None
        except PlaitError:
            raise
        except Exception as exc:
            raise self.error(exc, uri) from None

    def error(self, exc: BaseException, uri: str) -> SourceError:
        """Return the one-line error for a failed call on ``uri``."""
        found = failure_kind(exc)
        where = f"{uri} at {self.endpoint}" if self.endpoint else uri
        if found is None:
            text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            return SourceError(f"cannot read {where}: {text}", path=uri)
        kind, seen = found
        if kind == "credentials":
            return SourceError(f"no credentials for {where}: set them in the environment (e.g. AWS_ACCESS_KEY_ID / "
                               "AWS_SECRET_ACCESS_KEY), in your settings ([storage.\"PREFIX\"] key/secret) or with "
                               "--reference-option key=... --reference-option secret=...", path=uri)
        if kind == "unreachable":
            return SourceError(f"cannot reach {where} ({type(seen).__name__}): check the endpoint "
                               "(--reference-option client_kwargs.endpoint_url=…), the network and the credentials", path=uri)
        return SourceError(f"{where} refused access ({seen}): check the credentials and the permissions", path=uri)

    @abstractmethod
    def _list(self, uri: str, max_objects: int) -> list[ObjectInfo]:
        """List ``uri``: raise :class:`FileNotFoundError` if nothing is there, ``[]`` for an empty folder."""

    @abstractmethod
    def _head(self, uri: str, version_id: str | None) -> ObjectInfo | None: ...

    @abstractmethod
    def _read(self, uri: str, out: BinaryIO, check: Check, version_id: str | None, etag: str | None) -> ObjectInfo: ...


def normal_etag(value: Any) -> str | None:
    """Return an ETag without its quotes (S3 quotes them in some answers and not in others)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


class LocalSource(Source):
    """Local files: identity from ``stat`` (size, mtime in ns, inode)."""

    def _list(self, uri: str, max_objects: int) -> list[ObjectInfo]:
        root = parse_place(uri).path
        if os.path.isfile(root):
            return [self._info(root, os.stat(root))]
        if not os.path.isdir(root):
            raise FileNotFoundError(root)
        out: list[ObjectInfo] = []
        stack = [root]
        while stack:
            with os.scandir(stack.pop()) as items:
                for item in items:
                    if item.is_dir(follow_symlinks=False):
                        stack.append(item.path)
                    elif item.is_file(follow_symlinks=True):
                        out.append(self._info(item.path, item.stat(follow_symlinks=True)))
                        if len(out) > max_objects:
                            raise TooManyObjects
        return out

    def _head(self, uri: str, version_id: str | None) -> ObjectInfo | None:
        path = parse_place(uri).path
        st = os.stat(path)
        return self._info(path, st) if stat.S_ISREG(st.st_mode) else None

    def _read(self, uri: str, out: BinaryIO, check: Check, version_id: str | None, etag: str | None) -> ObjectInfo:
        path = parse_place(uri).path
        # O_NOFOLLOW: the caller resolved symlinks before deciding the path may be read; O_NONBLOCK:
        # opening a FIFO planted there must not hang (it is refused below, as anything not a file)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as src:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise SourceError(f"{path} is not a regular file; plait reads only files", path=path)
            info = self._info(path, before)
            check(info)
            shutil.copyfileobj(src, out, COPY_BUFFER)
            after = self._info(path, os.fstat(fd))
        check(after)  # changed while it was copied
        return info

    @staticmethod
    def _info(path: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo("file://" + path, st.st_size, mtime=str(st.st_mtime_ns), inode=st.st_ino)


class FsspecSource(Source):
    """Any other fsspec filesystem: identity from what ``info`` reports (checksum, generation, times).

    :param scheme: the URL scheme.
    :param options: fsspec storage options.
    """

    def __init__(self, scheme: str, options: Mapping[str, Any]) -> None:
        import fsspec

        self.scheme = scheme
        self.fs = fsspec.filesystem(scheme, **options)
        self.endpoint = endpoint_of(options)

    def _path(self, uri: str) -> str:
        return self.fs._strip_protocol(uri)

    def _uri(self, path: str) -> str:
        return path if "://" in path else f"{self.scheme}://{path.lstrip('/')}"

    def _list(self, uri: str, max_objects: int) -> list[ObjectInfo]:
        root = self._path(uri)
        self.fs.invalidate_cache()
        if self.fs.isdir(root):
            found = self.fs.find(root, detail=True)
            if len(found) > max_objects:
                raise TooManyObjects
            return [self._info(p, info) for p, info in found.items()]
        return [self._info(root, self.fs.info(root))]

    def _head(self, uri: str, version_id: str | None) -> ObjectInfo | None:
        path = self._path(uri)
        self.fs.invalidate_cache(path)
        info = self.fs.info(path)
        return self._info(path, info) if info.get("type", "file") == "file" else None

    def _read(self, uri: str, out: BinaryIO, check: Check, version_id: str | None, etag: str | None) -> ObjectInfo:
        info = self._head(uri, version_id)
        if info is None:
            raise FileNotFoundError(uri)
        check(info)
        with self.fs.open(self._path(uri), "rb") as src:
            shutil.copyfileobj(src, out, COPY_BUFFER)
        after = self._head(uri, version_id)
        if after is None:
            raise FileNotFoundError(uri)
        check(after)
        return info

    def _info(self, path: str, info: Mapping[str, Any]) -> ObjectInfo:
        def first(*keys: str) -> Any:
            return next((info[k] for k in keys if info.get(k) not in (None, "")), None)

        etag = first("ETag", "etag", "md5Hash", "crc32c", "checksum", "content_md5")
        version = first("VersionId", "version_id", "generation")
        mtime = first("mtime", "LastModified", "updated", "last_modified", "created")
        return ObjectInfo(self._uri(path), int(info.get("size") or 0), normal_etag(etag),
                          None if version is None else str(version), None if mtime is None else str(mtime))


def endpoint_of(options: Mapping[str, Any]) -> str | None:
    """Return the endpoint URL fsspec options name (``endpoint_url`` or ``client_kwargs.endpoint_url``), if any."""
    client = options.get("client_kwargs")
    found = options.get("endpoint_url") or (client.get("endpoint_url") if isinstance(client, Mapping) else None)
    return str(found) if found else None
