"""Blobs: bytes named by their digest, stored once at ``blobs/<ab>/<digest>``.

Writing a blob that exists is skipped (content addressing makes it the same bytes); every blob
read back is hashed and compared with its name. On a remote store, blobs read are kept in the
local cache folder, verified, so the next read costs no request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from plait.base.parallel import parallel_map
from plait.errors import FileChangedError, IntegrityError, SourceError
from plait.storage.backend import Backend, temporary_name, unlink_quietly
from plait.storage.digest import BUFFER_SIZE, FileDigest, VerifyingWriter, hash_bytes, iter_chunks

#: Threads for remote requests: many small blobs are not sent one request at a time.
REMOTE_WORKERS = 16


def blob_key(digest: str) -> str:
    """Return the store key of a blob."""
    return f"blobs/{digest[:2]}/{digest}"


class BlobStore:
    """Content-addressed blobs on one backend.

    :param backend: the store's storage primitives.
    :param algorithm: the store's hash algorithm.
    :param cache_dir: where blobs read from a remote store are kept (unused for local stores).
    """

    def __init__(self, backend: Backend, algorithm: str, cache_dir: str) -> None:
        self.backend = backend
        self.algorithm = algorithm
        self.cache_dir = cache_dir
        #: whether open() yields bytes already verified against their digest (so write_entry
        #: hashes a chunk no second time); loose blobs are read as stored
        self.verified_reads = False
        self._known: set[str] = set()

    @property
    def workers(self) -> int:
        """How many blobs to move at once: two for a local disk, more for network stores."""
        return 2 if self.backend.is_local else REMOTE_WORKERS

    def has(self, digest: str) -> bool:
        """Tell whether the blob is in the store."""
        if digest in self._known:
            return True
        if self.backend.exists(blob_key(digest)):
            self._known.add(digest)
            return True
        return False

    def missing(self, digests: Iterable[str]) -> list[str]:
        """Return the digests the store lacks, checking concurrently on remote stores."""
        todo = [d for d in dict.fromkeys(digests) if d not in self._known]
        if self.backend.is_local or len(todo) < 2:
            return [d for d in todo if not self.has(d)]
        present = parallel_map(self.has, todo, self.workers)
        return [d for d, p in zip(todo, present) if not p]

    def put_bytes(self, data: bytes, kind: str = "data") -> str:
        """Store ``data`` as a blob (if new) and return its digest.

        :param kind: what the bytes are: ``data`` (file contents) or ``tree`` (a tree node), so
            that a packed store can keep nodes apart from data.
        """
        digest = hash_bytes(data, self.algorithm)
        if not self.has(digest):
            self.backend.write(blob_key(digest), bytes(data))
            self._known.add(digest)
        return digest

    def put_file(self, path: str, fd: FileDigest, on_bytes: Callable[[int], Any] | None = None) -> int:
        """Store the blobs of one hashed file that the store lacks; return bytes written.

        What is stored is hashed once more on its way in (the copy, for a local store), so a
        file rewritten after it was hashed — even in place, to the same size and mtime — is
        refused instead of leaving a blob whose bytes do not match its name.

        :param path: the local file.
        :param fd: what hashing it found.
        :raises FileChangedError: if the file changed after it was hashed.
        :raises SourceError: if the file was deleted before it was stored.
        """
        try:
            return self._put_file(path, fd, on_bytes)
        except FileNotFoundError:
            if os.path.exists(path):
                raise
            raise SourceError(f"{path} was deleted while it was being stored; log it again", path=path) from None

    def _put_file(self, path: str, fd: FileDigest, on_bytes: Callable[[int], Any] | None) -> int:
        if fd.chunks is None:
            if self.has(fd.digest):
                return 0
            self.backend.write_file(blob_key(fd.digest), path, check=lambda f: self._check_copy(f, path, fd))
            self._known.add(fd.digest)
            if on_bytes:
                on_bytes(fd.size)
            return fd.size
        need = set(self.missing(d for d, _ in fd.chunks))
        written = 0
        batch: dict[str, bytes] = {}  # remote stores: chunks go out in concurrent batches
        for digest, data in iter_chunks(path, fd.chunks):
            if digest in need:
                if hash_bytes(data, self.algorithm) != digest:
                    raise FileChangedError(f"{path} changed after it was hashed; log it again", path=path)
                batch[digest] = data
                need.discard(digest)
                written += len(data)
                if self.backend.is_local or len(batch) >= REMOTE_WORKERS:
                    self._flush(batch)
            if on_bytes:
                on_bytes(len(data))
        self._flush(batch)
        return written

    def put_verified(self, digest: str, data: bytes, kind: str = "data") -> None:
        """Store bytes already verified against ``digest`` (read from another store), if new."""
        if not self.has(digest):
            self.backend.write(blob_key(digest), bytes(data))
            self._known.add(digest)

    def kind_of(self, digest: str) -> str:
        """Return what a stored blob holds: ``"data"`` or ``"tree"`` (loose blobs are all data)."""
        return "data"

    def read_many(self, digests: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(digest, verified bytes)`` for blobs, fetched concurrently on remote stores.

        :raises IntegrityError: for a missing or damaged blob.
        """
        todo = list(dict.fromkeys(digests))
        step = 4 * self.workers
        for i in range(0, len(todo), step):
            batch = todo[i : i + step]
            yield from zip(batch, parallel_map(self.read, batch, self.workers))

    def commit(self) -> str | None:
        """Make every blob put so far findable by other readers before a record names it.

        Loose blobs are stored as they are put: nothing to do (packed stores write their index).
        """
        return None

    def begin(self) -> None:
        """Start a log's storing on this thread (packed stores refuse its commit if a failed
        write dropped their open packs meanwhile); loose blobs need nothing."""

    def end(self) -> None:
        """End what :meth:`begin` started on this thread (its version record is created)."""

    def _flush(self, batch: dict[str, bytes]) -> None:
        self.backend.write_many({blob_key(d): data for d, data in batch.items()})
        self._known.update(batch)
        batch.clear()

    def _check_copy(self, copy: IO[bytes], path: str, fd: FileDigest) -> None:
        """Raise unless ``copy`` holds exactly the bytes ``fd`` describes."""
        writer = VerifyingWriter(_Sink(), fd.digest, self.algorithm, path)
        while data := copy.read(BUFFER_SIZE):
            writer.write(data)
        if writer.size != fd.size or not writer.matches():
            raise FileChangedError(f"{path} changed while it was being stored; log it again", path=path)

    def read(self, digest: str) -> bytes:
        """Return a blob's bytes, verified against its digest.

        :raises IntegrityError: if the bytes do not match, or the blob is missing.
        """
        try:
            data = self.backend.read(blob_key(digest))
        except FileNotFoundError:
            raise IntegrityError(f"blob {digest} is missing from the store", digest=digest) from None
        if hash_bytes(data, self.algorithm) != digest:
            raise IntegrityError(f"blob {digest} is damaged: its bytes do not match its digest", digest=digest)
        return data

    @contextmanager
    def open(self, digest: str) -> Iterator[IO[bytes]]:
        """Open a blob for reading: the store's own file when local, else a verified cached copy.

        :raises IntegrityError: if the blob is missing.
        """
        if not self.backend.is_local:
            path = self._cached_copy(digest)
        else:
            path = self.backend.local_path(blob_key(digest))
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise IntegrityError(f"blob {digest} is missing from the store", digest=digest) from None
        with f:
            yield f

    def local_copy(self, digest: str) -> str:
        """Return a local file path holding the blob (fetched into the cache when remote).

        The cached copy is verified before it is moved into place, and never overwritten once
        there.
        """
        if self.backend.is_local:
            path = self.backend.local_path(blob_key(digest))
            if not os.path.isfile(path):
                raise IntegrityError(f"blob {digest} is missing from the store", digest=digest)
            return path
        return self._cached_copy(digest)

    def _cached_copy(self, digest: str) -> str:
        cached = os.path.join(self.cache_dir, "blobs", digest[:2], digest)
        try:
            os.utime(cached)  # used now: a bounded cache removes it last
            return cached
        except FileNotFoundError:
            pass
        except OSError:  # a cache we may read but not touch
            if os.path.isfile(cached):
                return cached
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        tmp = temporary_name(cached)
        try:
            with open(tmp, "wb") as f:
                writer = VerifyingWriter(f, digest, self.algorithm, f"blob {digest}")
                try:
                    writer.write(self.backend.read(blob_key(digest)))
                except FileNotFoundError:
                    raise IntegrityError(f"blob {digest} is missing from the store", digest=digest) from None
                writer.check()
            os.replace(tmp, cached)
        finally:
            unlink_quietly(tmp)
        return cached

    def prefetch(self, digests: Iterable[str]) -> None:
        """Fetch blobs into the local cache concurrently (a no-op for local stores)."""
        todo = list(dict.fromkeys(digests))
        if self.backend.is_local or not todo:
            return
        parallel_map(self.local_copy, todo, self.workers)

    def write_entry(self, blobs: tuple[tuple[str, int], ...], digest: str, dest: str, what: str) -> None:
        """Write a file made of ``blobs`` to ``dest`` atomically, verified against ``digest``.

        The bytes go to a temporary name beside ``dest`` and are renamed into place only after
        every chunk and the whole file hashed right; on a mismatch nothing is left at ``dest``.

        :raises IntegrityError: if any blob or the whole file does not match.
        """
        tmp = temporary_name(dest)
        try:
            try:
                out = open(tmp, "wb")
            except FileNotFoundError:  # the folder is new: make it only then (one system call less per file)
                os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                out = open(tmp, "wb")
            with out:
                whole = VerifyingWriter(out, digest, self.algorithm, what)
                # a whole-file blob is its own chunk: hash it once, not twice
                single = len(blobs) == 1 and blobs[0][0] == digest
                for blob, size in blobs:
                    verified = single or self.verified_reads
                    chunk = None if verified else VerifyingWriter(_Sink(), blob, self.algorithm, f"{what} (blob {blob})")
                    try:
                        with self.open(blob) as src:
                            left = size  # read what the blob should hold (no read for the end of file): the digests check the rest
                            while left > 0 and (data := src.read(min(BUFFER_SIZE, left))):
                                left -= len(data)
                                if chunk is not None:
                                    chunk.write(data)
                                whole.write(data)
                    except IntegrityError as exc:
                        if exc.path:
                            raise
                        raise IntegrityError(f"{what}: {exc}", digest=blob, path=what) from None
                    if left:
                        raise IntegrityError(f"{what}: blob {blob} holds fewer bytes than the manifest says ({size}); "
                                             "the store is damaged here (run `plait verify`)", digest=blob, path=what)
                    if chunk is not None:
                        chunk.check()
                whole.check()
            os.replace(tmp, dest)
        except BaseException:
            unlink_quietly(tmp)
            raise

    def verify(self, digest: str, size: int | None = None) -> bool:
        """Tell whether the stored blob exists and hashes to its digest (reads it, streaming).

        :param size: the size a manifest says it has; a blob of another size fails too.
        """
        actual = self.checked_size(digest)
        return actual is not None and (size is None or actual == size)

    def checked_sizes(self, digests: Iterable[str]) -> dict[str, int | None]:
        """Return ``{digest: size}`` of blobs that hash to their name (``None`` for the others), each read once."""
        todo = list(dict.fromkeys(digests))
        return dict(zip(todo, parallel_map(self.checked_size, todo, max(2, self.workers))))

    def checked_size(self, digest: str) -> int | None:
        """Return the size of the stored blob if it hashes to its digest, else ``None`` (reads it)."""
        try:
            if self.backend.is_local:
                writer = VerifyingWriter(_Sink(), digest, self.algorithm, digest)
                with open(self.backend.local_path(blob_key(digest)), "rb") as f:
                    while data := f.read(BUFFER_SIZE):
                        writer.write(data)
                return writer.size if writer.matches() else None
            return len(self.read(digest))
        except (IntegrityError, SourceError, OSError):
            return None

    def protect(self, digests: Iterable[str]) -> list[str]:
        """Keep blobs a gc marked from its sweep: touch each, so it is newer than the mark.

        :param digests: stored blobs a log reuses that a gc mark lists.
        :returns: those a sweep already deleted (the caller stores them again).
        """
        lost = []
        for digest in digests:
            try:
                self.backend.touch(blob_key(digest))
            except FileNotFoundError:
                lost.append(digest)
        self.forget(lost)
        return lost

    def delete(self, digest: str) -> None:
        """Delete a blob (garbage collection only)."""
        self.backend.delete(blob_key(digest))
        self._known.discard(digest)

    def forget(self, digests: Iterable[str]) -> None:
        """Stop trusting that these blobs are stored: the next check asks the store again.

        :param digests: blobs a gc may have taken since this process saw them.
        """
        self._known.difference_update(digests)


class _Sink:
    def write(self, data: bytes | memoryview) -> None:
        pass

