"""Digests of bytes, files and streams, and content-defined chunking of large files.

A digest is the lowercase hex of a hash: xxh3-128 (32 hex digits) by default, or blake3-256
(64 hex digits) for stores whose writers do not all trust each other. Files at least
:data:`CHUNK_THRESHOLD` bytes long are also cut into content-defined chunks (FastCDC), so that an
append or an in-place edit of a large file changes only a few chunks.

Everything here streams through a fixed buffer: memory stays flat for any file size.
"""

from __future__ import annotations

import mmap
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from plait.errors import FileChangedError, IntegrityError, SourceError, StoreError

XXH3_128 = "xxh3-128"
BLAKE3 = "blake3"
ALGORITHMS = (XXH3_128, BLAKE3)

#: Files at least this long are chunked. Below it a file is one blob (and one request).
CHUNK_THRESHOLD = 8 << 20
#: FastCDC parameters: chunks average 1.25 MiB and stay under 2.5 MiB in practice; a 4 KiB
#: overwrite or insertion stores one chunk, a 4 MiB append about 5.4 MiB. The gear scan starts
#: after ``min`` bytes, which keeps it above 2 GiB/s (the choice is measured in benchmarks/NOTES.md;
#: tests/storage/test_chunking.py holds the cuts to it).
CHUNK_AVG = 1 << 20
CHUNK_MIN = 1 << 20
CHUNK_MAX = 4 << 20
CHUNK_NC = 2
#: Read buffer (larger buffers hash no faster from page cache).
BUFFER_SIZE = 1 << 20
#: Reads land page-aligned: a read from page cache into a buffer a few bytes past a page
#: boundary (where ``malloc`` puts a ``bytearray``) runs several times slower on the machines we
#: measure on. Every read buffer here comes from :func:`aligned_buffer`, and the chunker keeps
#: its reads page-aligned. A large file is read once, in order: one thread reads a window and
#: finds the cuts, a second hashes each stretch of chunks and the whole file (and a store
#: appends the chunks it lacks to a pack) while the first fills the next window.
PAGE = mmap.PAGESIZE
#: Each of the chunker's windows: the chunks cut from one are hashed (and stored) while the next fills.
CUT_WINDOW = 2 * CHUNK_MAX
#: How many windows take turns: a store's slow write does not stop the reading at once.
WINDOWS = 3

_HEX = {XXH3_128: re.compile(r"[0-9a-f]{32}"), BLAKE3: re.compile(r"[0-9a-f]{64}")}


def new_hasher(algorithm: str = XXH3_128) -> Any:
    """Return a fresh incremental hasher with ``update()`` and ``hexdigest()``.

    :param algorithm: ``xxh3-128`` or ``blake3``.
    :raises StoreError: for an unknown algorithm, or blake3 without its package.
    """
    if algorithm == XXH3_128:
        import xxhash

        return xxhash.xxh3_128()
    if algorithm == BLAKE3:
        try:
            import blake3
        except ImportError:
            raise StoreError("this store hashes with blake3: pip install blake3") from None
        return blake3.blake3(max_threads=1)
    raise StoreError(f"unknown hash algorithm {algorithm!r}; plait knows {', '.join(ALGORITHMS)}")


def hash_bytes(data: bytes | bytearray | memoryview, algorithm: str = XXH3_128) -> str:
    """Return the hex digest of ``data``."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return hasher.hexdigest()


def bytes_hasher(algorithm: str = XXH3_128) -> Callable[[bytes | bytearray | memoryview], str]:
    """Return a function giving the hex digest of bytes (one C call for xxh3: no hasher object)."""
    if algorithm == XXH3_128:
        import xxhash

        return xxhash.xxh3_128_hexdigest
    new_hasher(algorithm)  # refuses an unknown algorithm now, not per call
    return lambda data: hash_bytes(data, algorithm)


def is_digest(text: object, algorithm: str = XXH3_128) -> bool:
    """Tell whether ``text`` is a well-formed digest for ``algorithm``."""
    return isinstance(text, str) and bool(_HEX[algorithm].fullmatch(text))


@dataclass(frozen=True, slots=True)
class FileDigest:
    """What hashing one file found.

    :ivar digest: digest of the whole content.
    :ivar size: length in bytes.
    :ivar chunks: ``((digest, size), ...)`` for a chunked file, else ``None``.
    """

    digest: str
    size: int
    chunks: tuple[tuple[str, int], ...] | None = None

    @property
    def blobs(self) -> tuple[tuple[str, int], ...]:
        """The blobs that hold this content: its chunks, or the whole file as one blob."""
        return self.chunks if self.chunks is not None else ((self.digest, self.size),)


def stat_key(st: os.stat_result) -> tuple[int, int, int]:
    """Return what identifies one state of a file cheaply: ``(inode, size, mtime_ns)``."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def new_chunker() -> Any:
    """Return the FastCDC chunker every file of a store is cut with (the cuts decide which blobs
    two versions of a file share, so they never change)."""
    from pyfastcdc import FastCDC

    return FastCDC(avg_size=CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX, normalized_chunking=CHUNK_NC)


def digest_file(path: str, algorithm: str = XXH3_128, *, on_bytes: Callable[[int], Any] | None = None,
                sink: Callable[[str, memoryview], Any] | None = None) -> FileDigest:
    """Hash one file, chunking it when it is large.

    The file's size and mtime are compared before and after reading, so a file that is being
    written to while it is hashed is refused rather than recorded with a digest of mixed bytes.

    :param path: a local file path.
    :param algorithm: the store's hash algorithm.
    :param on_bytes: called with the number of bytes read, for progress.
    :param sink: called with ``(digest, bytes)`` of each chunk of a chunked file, in file order,
        on a helper thread while the next bytes are read (a store appends the chunks it lacks:
        the bytes stored are the bytes hashed, read once). The view is valid only during the
        call. A file below :data:`CHUNK_THRESHOLD` is not passed to it.
    :returns: the :class:`FileDigest`.
    :raises SourceError: if the file is missing or unreadable.
    :raises FileChangedError: if it changed while it was read.
    """
    try:
        with open(path, "rb", buffering=0) as f:
            before = os.fstat(f.fileno())
            if before.st_size >= CHUNK_THRESHOLD:
                result = _digest_chunked(f, before.st_size, algorithm, on_bytes, sink)
            else:
                result = _digest_whole(f, algorithm, on_bytes)
        after = os.stat(path)
    except OSError as exc:
        raise _source_error(exc, path) from None
    if stat_key(before)[1:] != stat_key(after)[1:] or result.size != after.st_size:
        raise FileChangedError(f"{path} changed while it was being read; log it again once it is written", path=path)
    return result


def _source_error(exc: OSError, path: str) -> OSError:
    """Return what to raise for an error reading a file to log: a :class:`SourceError` saying
    what happened, or ``exc`` itself when it is no missing, folder or permission error."""
    if isinstance(exc, FileNotFoundError):
        return SourceError(f"{path} does not exist (was it moved or deleted while logging?)", path=path)
    if isinstance(exc, IsADirectoryError):
        return SourceError(f"{path} is a folder; use add_dir() for folders", path=path)
    if isinstance(exc, PermissionError):
        return SourceError(f"{path} cannot be read: permission denied", path=path)
    return exc


def read_small(path: str, key: tuple[int, int, int]) -> bytes:
    """Return the bytes of a file below :data:`CHUNK_THRESHOLD` whose stat was ``key``, read with
    one ``read``; the stat after reading must still be ``key``.

    :param key: ``(inode, size, mtime_ns)`` taken when the file was found (:func:`stat_key`).
    :raises SourceError: if the file is missing or unreadable.
    :raises FileChangedError: if it is not the file ``key`` describes any more, or changed while read.
    """
    size = key[1]
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            data = os.read(fd, size + 1)
            while len(data) < size and (more := os.read(fd, size + 1 - len(data))):  # a short read (rare)
                data += more
            after = os.fstat(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _source_error(exc, path) from None
    if len(data) != size or stat_key(after) != key:
        raise FileChangedError(f"{path} changed while it was being read; log it again once it is written", path=path)
    return data


def aligned_buffer(size: int) -> memoryview:
    """Return a writable, page-aligned buffer of ``size`` bytes (see :data:`PAGE`)."""
    return memoryview(mmap.mmap(-1, size))


def _digest_whole(f: Any, algorithm: str, on_bytes: Callable[[int], Any] | None) -> FileDigest:
    hasher = new_hasher(algorithm)
    view = aligned_buffer(BUFFER_SIZE)
    size = 0
    while n := f.readinto(view):
        hasher.update(view[:n])
        size += n
        if on_bytes:
            on_bytes(n)
    return FileDigest(hasher.hexdigest(), size)


def _digest_chunked(f: Any, size: int, algorithm: str, on_bytes: Callable[[int], Any] | None,
                    sink: Callable[[str, memoryview], Any] | None) -> FileDigest:
    """Cut an open file into chunks and hash it whole on this thread; hash the chunks (and hand
    them to ``sink``) on a helper, a window behind. A file shorter than ``size`` returns a
    shorter result (the caller's size check refuses it)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    whole = new_hasher(algorithm)
    digest_of = bytes_hasher(algorithm)
    failed = threading.Event()

    def digest_stretch(chunks: list[memoryview]) -> list[tuple[str, int]]:  # in file order, on the helper
        out = []
        for data in chunks:
            if failed.is_set():  # the reader stopped, or an earlier stretch failed: store nothing more
                break
            digest = digest_of(data)
            if sink is not None:
                try:
                    sink(digest, data)
                except BaseException:
                    failed.set()  # the stretches queued behind this one must not write (a full disk)
                    raise
            out.append((digest, len(data)))
        if on_bytes:
            on_bytes(sum(n for _, n in out))
        return out

    chunks: list[tuple[str, int]] = []
    pending: deque[Future[list[tuple[str, int]]]] = deque()
    with ThreadPoolExecutor(1) as helper:
        try:
            # the whole file's digest is taken as each read lands (in file order, still in the CPU's cache)
            for stretch in _stretches(f, size, lambda: _take(pending, chunks), whole.update):
                pending.append(helper.submit(digest_stretch, stretch))
            while pending:
                _take(pending, chunks)
        except BaseException:
            failed.set()
            raise
    return FileDigest(whole.hexdigest(), sum(n for _, n in chunks), tuple(chunks))


def _take(pending: deque[Any], chunks: list[tuple[str, int]]) -> None:
    """Wait for the oldest stretch being hashed and add its chunks (its window is free again)."""
    chunks += pending.popleft().result()


def _stretches(f: Any, size: int, free: Callable[[], None],
               on_read: Callable[[memoryview], Any]) -> Iterator[list[memoryview]]:
    """Yield the FastCDC chunks of the first ``size`` bytes of an open file, a windowful at a time.

    A FastCDC cut depends only on the bytes from the previous cut on, up to ``CHUNK_MAX`` of
    them: a cut the chunker finds before the end of the bytes it was given is the cut it finds
    given more (it scans the same bytes with the same masks), so only the last chunk of a
    window, the one that reaches its end, waits for more bytes (unless the file ends there). Its
    bytes are copied to the front of the next window, placed so that the next read lands
    page-aligned, and the rest of that window is read. The chunks of a stretch are views into
    its window; :data:`WINDOWS` windows take turns, and ``free()`` is called before a window is
    read into again while a stretch cut from it may still be in use (it waits for the oldest).
    ``on_read`` is given the bytes of each read as it lands, once each, in file order.
    """
    chunker = new_chunker()
    windows = [aligned_buffer(CUT_WINDOW) for _ in range(WINDOWS)]
    turn = 0
    window = windows[0]
    head = tail = read = 0  # the bytes not cut yet are window[head:tail]; ``read`` bytes of the file so far
    while True:
        while read < size and tail < CUT_WINDOW:
            n = f.readinto(window[tail : min(CUT_WINDOW, tail + size - read, tail + BUFFER_SIZE)])
            if not n:
                break  # shorter than it was: the caller's size check refuses it
            on_read(window[tail : tail + n])
            tail += n
            read += n
        at_end = read >= size or tail < CUT_WINDOW
        stretch: list[memoryview] = []
        used = head
        for chunk in chunker.cut_buf(window[head:tail]):
            if used + chunk.length == tail and not at_end:
                break  # cut at the end of the window, not at a cut point: more bytes may move it
            stretch.append(chunk.data)
            used += chunk.length
        if stretch:
            yield stretch
        if at_end:
            return
        rest = tail - used
        front = (-rest) % PAGE  # the rest ends on a page boundary: the next read is aligned
        turn += 1
        if turn >= WINDOWS:
            free()  # the stretch cut from the window read into next is hashed
        following = windows[turn % WINDOWS]
        following[front : front + rest] = window[used:tail]
        window, head, tail = following, front, front + rest


def iter_chunks(path: str, chunks: Iterable[tuple[str, int]]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(digest, bytes)`` for each chunk of a file, reading it once, in order.

    :param path: the local file that was hashed into ``chunks``.
    :param chunks: its ``(digest, size)`` list, as :func:`digest_file` returned it.
    """
    with open(path, "rb") as f:
        for digest, size in chunks:
            data = f.read(size)
            if len(data) != size:
                raise FileChangedError(f"{path} shrank while it was being stored; log it again", path=path)
            yield digest, data


class VerifyingWriter:
    """Hash bytes as they are written to a file object and check the digest at the end.

    :param fileobj: where the bytes go.
    :param digest: the digest they must hash to.
    :param algorithm: the store's algorithm.
    :param what: a name for the content, for the error message.
    """

    def __init__(self, fileobj: Any, digest: str, algorithm: str, what: str) -> None:
        self.fileobj = fileobj
        self.digest = digest
        self.what = what
        self.size = 0
        self._hasher = new_hasher(algorithm)

    def write(self, data: bytes | memoryview) -> None:
        """Write ``data`` and feed it to the hash."""
        self._hasher.update(data)
        self.fileobj.write(data)
        self.size += len(data)

    def matches(self) -> bool:
        """Tell whether everything written so far hashes to the expected digest."""
        return self._hasher.hexdigest() == self.digest

    def check(self) -> None:
        """Raise :class:`IntegrityError` unless everything written hashed to the expected digest."""
        actual = self._hasher.hexdigest()
        if actual != self.digest:
            raise IntegrityError(
                f"{self.what}: stored bytes hash to {actual}, expected {self.digest}; "
                "the store is damaged here (run `plait verify` to see what is affected)",
                digest=self.digest,
                path=self.what,
            )
