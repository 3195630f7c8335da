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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from plait.core.errors import FileChangedError, IntegrityError, SourceError, StoreError

XXH3_128 = "xxh3-128"
BLAKE3 = "blake3"
ALGORITHMS = (XXH3_128, BLAKE3)

#: Files at least this long are chunked. Below it a file is one blob (and one request).
CHUNK_THRESHOLD = 8 << 20
#: FastCDC parameters, chosen by measurement on 256 MiB of random bytes (tests/core/test_chunking.py
#: and benchmarks/ hold them to it). With min = avg = 1 MiB, max = 4 MiB and normalized chunking 2,
#: chunks average 1.25 MiB (~820 PUTs per GiB on S3), none exceeds 2.5 MiB in practice, a 4 KiB
#: overwrite or insertion stores one chunk (1.05 MiB) and a 4 MiB append stores 5.4 MiB. The gear
#: scan starts only after ``min`` bytes, so it runs at 2–3.5 GiB/s, against 0.55–0.85 GiB/s for the
#: old avg 1 MiB / min 256 KiB / NC 1 (same B3 cost, 832 chunks per GiB).
CHUNK_AVG = 1 << 20
CHUNK_MIN = 1 << 20
CHUNK_MAX = 4 << 20
CHUNK_NC = 2
#: Large files are chunked in segments on :data:`HASH_THREADS` threads (the gear scan and xxh3
#: both release the GIL). Each segment is cut on its own, starting at its first byte, and runs on
#: :data:`SEGMENT_LOOKAHEAD` bytes into the next one; a cut point chosen in that overlap that the
#: next segment also chose proves both agree from there on (a FastCDC cut depends only on the
#: previous cut and the bytes after it), so the merged cuts are exactly the sequential ones.
#: Common cuts turn up within 12 MiB in ~25 of 26 samples on random data (most within 7 MiB);
#: when none does, the earlier segment's cuts are extended until one does.
SEGMENT_SIZE = 128 << 20
SEGMENT_LOOKAHEAD = 16 << 20
HASH_THREADS = 2
#: Read buffer. 1 MiB measured best for xxh3 from page cache (larger buffers gain nothing).
BUFFER_SIZE = 1 << 20
#: Where a read lands in the buffer matters: on the AMD EPYC machines we measure on, a read from
#: page cache into memory 8-24 bytes past a page boundary (where ``malloc`` puts a ``bytearray``
#: of 1 MiB) runs at 1.6-2 GiB/s, against 10-11 GiB/s page-aligned (the kernel's ``rep movsb``
#: stalls when source and destination nearly alias modulo 4 KiB). Every read buffer here comes
#: from :func:`aligned_buffer`, and the chunker keeps its reads page-aligned.
PAGE = mmap.PAGESIZE
#: The chunker's window: whole chunks are cut from it, the rest moves to its front.
CUT_WINDOW = 2 * CHUNK_MAX

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


def is_digest(text: object, algorithm: str = XXH3_128) -> bool:
    """Tell whether ``text`` is a well-formed digest for ``algorithm``."""
    return isinstance(text, str) and bool(_HEX[algorithm].fullmatch(text))


@dataclass(frozen=True)
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


def _chunker() -> Any:
    from pyfastcdc import FastCDC

    return FastCDC(avg_size=CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX, normalized_chunking=CHUNK_NC)


def digest_file(path: str, algorithm: str = XXH3_128, *, on_bytes: Callable[[int], Any] | None = None) -> FileDigest:
    """Hash one file, chunking it when it is large.

    The file's size and mtime are compared before and after reading, so a file that is being
    written to while it is hashed is refused rather than recorded with a digest of mixed bytes.

    :param path: a local file path.
    :param algorithm: the store's hash algorithm.
    :param on_bytes: called with the number of bytes read, for progress.
    :returns: the :class:`FileDigest`.
    :raises SourceError: if the file is missing or unreadable.
    :raises FileChangedError: if it changed while it was read.
    """
    try:
        with open(path, "rb", buffering=0) as f:
            before = os.fstat(f.fileno())
            if before.st_size >= CHUNK_THRESHOLD:
                result = _digest_chunked(path, before.st_size, algorithm, on_bytes)
            else:
                result = _digest_whole(f, algorithm, on_bytes)
        after = os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"{path} does not exist (was it moved or deleted while logging?)", path=path) from None
    except IsADirectoryError:
        raise SourceError(f"{path} is a folder; use add_dir() for folders", path=path) from None
    except PermissionError:
        raise SourceError(f"{path} cannot be read: permission denied", path=path) from None
    if stat_key(before)[1:] != stat_key(after)[1:] or result.size != after.st_size:
        raise FileChangedError(f"{path} changed while it was being read; log it again once it is written", path=path)
    return result


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


def _digest_chunked(path: str, size: int, algorithm: str, on_bytes: Callable[[int], Any] | None) -> FileDigest:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(HASH_THREADS) as pool:
        whole = pool.submit(_hash_range, path, algorithm, on_bytes)
        starts = list(range(0, size, SEGMENT_SIZE))
        if len(starts) > 1 and starts[-1] > size - SEGMENT_LOOKAHEAD:
            starts.pop()  # a short last segment would be cut twice over
        segments = [pool.submit(_cut_range, path, s, algorithm, _segment_end(starts, i, size), size) for i, s in enumerate(starts)]
        chunks = _merge_segments(path, algorithm, size, starts, [s.result() for s in segments])
        digest, read = whole.result()
    if read != size or sum(n for _, n in chunks) != size:
        raise FileChangedError(f"{path} changed while it was being read; log it again once it is written", path=path)
    return FileDigest(digest, size, tuple(chunks))


def _segment_end(starts: list[int], i: int, size: int) -> int:
    return size if i + 1 == len(starts) else min(size, starts[i + 1] + SEGMENT_LOOKAHEAD)


def _hash_range(path: str, algorithm: str, on_bytes: Callable[[int], Any] | None) -> tuple[str, int]:
    with open(path, "rb", buffering=0) as f:
        fd = _digest_whole(f, algorithm, on_bytes)
    return fd.digest, fd.size


def _cut_range(path: str, start: int, algorithm: str, end: int, size: int) -> list[tuple[int, str, int]]:
    """Cut ``[start, end)`` of a file into ``(offset, digest, length)`` chunks.

    Only cuts that a whole-file pass would also make at this position are kept: near an
    artificial end (``end < size``) the chunker sees fewer than ``CHUNK_MAX`` bytes ahead and
    may cut differently, so those chunks are dropped.
    """
    out = []
    with open(path, "rb", buffering=0) as f:
        for offset, data in _cut(f, start, end):
            if end < size and end - offset < CHUNK_MAX:
                break
            out.append((offset, hash_bytes(data, algorithm), len(data)))
    return out


def _cut(f: Any, start: int, end: int) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(offset, bytes)`` of the FastCDC chunks of ``[start, end)`` of an open file.

    Each chunk's bytes are a view into the window, valid until the next chunk is asked for.
    A FastCDC cut depends only on the ``CHUNK_MAX`` bytes after the previous cut, so a chunk is
    final once that many bytes (or the end) are in the window; what is left moves to the front,
    placed so that the next read lands page-aligned.
    """
    chunker = _chunker()
    window = aligned_buffer(CUT_WINDOW)
    f.seek(start)
    head = tail = 0  # the unread bytes are window[head:tail]; window[head] is at file offset ``base``
    base = start
    at_end = False
    while True:
        while not at_end and tail < CUT_WINDOW:
            want = min(CUT_WINDOW - tail, end - (base + tail - head))
            n = f.readinto(window[tail : tail + want]) if want > 0 else 0
            if not n:
                at_end = True
            tail += n
        if head == tail:
            return
        used = 0
        for chunk in chunker.cut_buf(window[head:tail]):
            if not at_end and tail - head - chunk.offset < CHUNK_MAX:
                break  # not enough bytes after it to be sure of this cut
            yield base + chunk.offset, chunk.data
            used = chunk.offset + chunk.length
        head, base = head + used, base + used
        rest = tail - head
        front = (-rest) % PAGE  # the rest ends on a page boundary: the next read is aligned
        window.obj.move(front, head, rest)  # type: ignore[union-attr]
        head, tail = front, front + rest


def _merge_segments(path: str, algorithm: str, size: int, starts: list[int], segments: list[list[tuple[int, str, int]]]) -> list[tuple[str, int]]:
    merged = list(segments[0])
    for start, segment in zip(starts[1:], segments[1:]):
        at = {offset: i for i, (offset, _, _) in enumerate(segment)}
        checked = 0
        while True:
            hit = next((j for j in range(checked, len(merged)) if _end(merged[j]) >= start and _end(merged[j]) in at), None)
            if hit is not None:
                merged = merged[: hit + 1] + segment[at[_end(merged[hit])] :]
                break
            tail = _end(merged[-1])
            if tail >= size:
                return [(d, n) for _, d, n in merged]
            # no common cut point yet (rare: ~1 in 25 on random data): extend the sure cuts
            checked = len(merged)
            merged += _cut_range(path, tail, algorithm, min(size, tail + SEGMENT_LOOKAHEAD + CHUNK_MAX), size)
    return [(d, n) for _, d, n in merged]


def _end(chunk: tuple[int, str, int]) -> int:
    return chunk[0] + chunk[2]


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
