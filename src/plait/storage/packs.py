"""Pack files: many blobs in one immutable object, named by the digest of its bytes.

A format-2 store keeps small files, chunks of large ones and tree nodes in packs instead of one
object per blob (see :mod:`plait.storage.packindex` for how a blob is found). Layout::

    blob_0 ‖ blob_1 ‖ … ‖ blob_{n-1} ‖ header ‖ header_len:u32le ‖ version:u8 ‖ "PLPK"
    header = zlib( nonce:16 ‖ n × [digest ‖ kind:u8 ‖ codec:u8 ‖ stored_len:u32le ‖ raw_len:u32le] )

Offsets are implied by the stored lengths, so a pack describes itself: the index of a store can
be rebuilt from its packs alone (two range reads each). Data and tree nodes go to separate packs
(readers that only walk trees never fetch data packs). The pack's name is the hex digest of all
its bytes, so a damaged pack is found by hashing it; the random nonce makes every pack a new
name, even one holding the very blobs of another: a writer that copies the blobs of a pack gc
condemned (see :meth:`plait.storage.packed.PackedBlobStore.protect`) never lands on that pack.
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from plait.base.ids import random_suffix
from plait.errors import CorruptRecordError, IntegrityError
from plait.storage.backend import Backend, unlink_quietly
from plait.storage.digest import BLAKE3, hash_bytes, new_hasher

PACK_MAGIC = b"PLPK"
PACK_VERSION = 1
#: header_len:u32le ‖ version:u8 ‖ magic
TRAILER = struct.Struct("<IB4s")
KIND_DATA = 0
KIND_TREE = 1
KINDS = {"data": KIND_DATA, "tree": KIND_TREE}
CODEC_RAW = 0
CODEC_ZLIB = 1
#: What a pack is cut at by default (``packs.target_bytes`` in ``plait.json``).
TARGET_BYTES = 16 << 20
#: No pack grows past this, whatever the configured target.
MAX_PACK_BYTES = 64 << 20
#: The largest blob a pack holds: files below the chunking threshold are one blob, chunks are smaller.
MAX_BLOB_BYTES = 8 << 20
#: Where packs live in a store.
PACKS_PREFIX = "packs"
#: Random bytes at the start of every header: no two packs share a name.
NONCE_BYTES = 16
#: Blobs appended to an open pack are written (and hashed) this many bytes at a time.
STAGE_BYTES = 1 << 20


def digest_size(algorithm: str) -> int:
    """Return how many bytes a raw digest of ``algorithm`` takes (16 for xxh3-128, 32 for blake3)."""
    return 32 if algorithm == BLAKE3 else 16


def pack_key(pack_id: str) -> str:
    """Return the store key of a pack."""
    return f"{PACKS_PREFIX}/{pack_id[:2]}/{pack_id}"


def _entry_struct(algorithm: str) -> struct.Struct:
    return struct.Struct(f"<{digest_size(algorithm)}sBBII")


@dataclass(frozen=True, slots=True)
class PackEntry:
    """Where one blob sits inside a pack.

    :ivar digest: the blob's digest (of its raw bytes).
    :ivar kind: ``KIND_DATA`` or ``KIND_TREE``.
    :ivar codec: how it is stored: ``CODEC_RAW`` or ``CODEC_ZLIB``.
    :ivar offset: where its stored bytes start in the pack.
    :ivar stored_len: how many bytes it takes in the pack.
    :ivar raw_len: its size once decoded.
    """

    digest: str
    kind: int
    codec: int
    offset: int
    stored_len: int
    raw_len: int


class Entries(Sequence[PackEntry]):
    """The entries of one pack, kept as columns (a digest, two lengths) rather than one object
    per blob: a log of a million small files holds them all until its commit. Offsets follow
    from the lengths; iterating yields :class:`PackEntry` objects.
    """

    __slots__ = ("kind", "codec", "digests", "stored", "raw")

    def __init__(self, kind: int, codec: int) -> None:
        self.kind, self.codec = kind, codec
        self.digests: list[str] = []
        self.stored = array("L")
        self.raw = array("L")

    def append(self, digest: str, stored_len: int, raw_len: int) -> None:
        self.digests.append(digest)
        self.stored.append(stored_len)
        self.raw.append(raw_len)

    def __len__(self) -> int:
        return len(self.digests)

    def __iter__(self) -> Iterator[PackEntry]:
        offset = 0
        kind, codec = self.kind, self.codec
        for digest, stored, raw in zip(self.digests, self.stored, self.raw):
            yield PackEntry(digest, kind, codec, offset, stored, raw)
            offset += stored

    @overload
    def __getitem__(self, i: int) -> PackEntry: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[PackEntry, ...]: ...

    def __getitem__(self, i: int | slice) -> PackEntry | tuple[PackEntry, ...]:
        return tuple(self)[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class SealedPack:
    """A pack stored in full: its name, size and what it holds."""

    pack_id: str
    size: int
    entries: Sequence[PackEntry]


def encode_header(entries: list[PackEntry], algorithm: str) -> bytes:
    """Return a pack's header and trailer for ``entries`` (in the order their bytes were written)."""
    row = _entry_struct(algorithm)
    rows = b"".join(row.pack(bytes.fromhex(e.digest), e.kind, e.codec, e.stored_len, e.raw_len) for e in entries)
    header = zlib.compress(os.urandom(NONCE_BYTES) + rows, 1)
    return header + TRAILER.pack(len(header), PACK_VERSION, PACK_MAGIC)


def parse_trailer(tail: bytes, size: int, key: str) -> int:
    """Return the header length a pack's last bytes announce.

    :raises CorruptRecordError: if they are not a pack trailer, or name a header larger than the pack.
    """
    if len(tail) != TRAILER.size:
        raise CorruptRecordError(f"{key} is too short to be a pack; run `plait verify`", key=key)
    header_len, version, magic = TRAILER.unpack(tail)
    if magic != PACK_MAGIC or version != PACK_VERSION:
        raise CorruptRecordError(f"{key} is not a plait pack (or one of a newer plait: upgrade plait)", key=key)
    if header_len > size - TRAILER.size:
        raise CorruptRecordError(f"{key} is damaged: its header would be longer than the pack", key=key)
    return header_len


def parse_header(header: bytes, data_len: int, algorithm: str, key: str) -> list[PackEntry]:
    """Return the entries a pack header lists, checked against the pack's data length.

    :param data_len: bytes before the header (the blobs).
    :raises CorruptRecordError: if the header does not decode, names an unknown kind or codec, a
        blob over the size limit, or blobs that do not exactly fill the data.
    """
    return [PackEntry(digest.hex(), kind, codec, offset, stored_len, raw_len)
            for digest, kind, codec, offset, stored_len, raw_len in header_rows(header, data_len, algorithm, key)]


#: One blob a pack header lists: ``(raw digest, kind, codec, offset, stored_len, raw_len)``.
Row = tuple[bytes, int, int, int, int, int]


def header_rows(header: bytes, data_len: int, algorithm: str, key: str) -> list[Row]:
    """Return what a pack header lists as plain tuples (see :func:`parse_header`: the same checks)."""
    row = _entry_struct(algorithm)
    try:
        raw = zlib.decompress(header)
    except zlib.error:
        raise CorruptRecordError(f"{key} is damaged: its header does not decompress; run `plait verify`", key=key) from None
    if len(raw) < NONCE_BYTES or (len(raw) - NONCE_BYTES) % row.size:
        raise CorruptRecordError(f"{key} is damaged: its header is cut short", key=key)
    rows = []
    offset = 0
    for digest, kind, codec, stored_len, raw_len in row.iter_unpack(raw[NONCE_BYTES:]):
        if kind not in (KIND_DATA, KIND_TREE) or codec not in (CODEC_RAW, CODEC_ZLIB):
            raise CorruptRecordError(f"{key} names a blob of unknown kind {kind} or codec {codec}: "
                                     "a newer plait wrote it (upgrade plait) or it is damaged", key=key)
        if raw_len > MAX_BLOB_BYTES or stored_len > MAX_BLOB_BYTES + 1024 or (codec == CODEC_RAW and stored_len != raw_len):
            raise CorruptRecordError(f"{key} is damaged: it lists a blob of impossible size", key=key)
        rows.append((digest, kind, codec, offset, stored_len, raw_len))
        offset += stored_len
    if offset != data_len:
        raise CorruptRecordError(f"{key} is damaged: its header lists {offset} bytes of blobs, the pack holds {data_len}", key=key)
    return rows


def pack_rows(data: bytes | memoryview, algorithm: str, key: str) -> list[Row]:
    """Return the header rows of a whole pack held in memory (no object per blob but a tuple).

    :raises CorruptRecordError: if its trailer or header is damaged.
    """
    size = len(data)
    header_len = parse_trailer(bytes(data[size - TRAILER.size:]), size, key)
    start = size - TRAILER.size - header_len
    return header_rows(bytes(data[start : size - TRAILER.size]), start, algorithm, key)


def split_pack(data: bytes | memoryview, algorithm: str, key: str) -> list[PackEntry]:
    """Return the entries of a whole pack held in memory.

    :raises CorruptRecordError: if its trailer or header is damaged.
    """
    return [PackEntry(digest.hex(), kind, codec, offset, stored_len, raw_len)
            for digest, kind, codec, offset, stored_len, raw_len in pack_rows(data, algorithm, key)]


def read_entries(backend: Backend, key: str, size: int, algorithm: str) -> list[PackEntry]:
    """Return what a stored pack holds, from its trailer and header (two range reads).

    :raises CorruptRecordError: if they are damaged.
    """
    header_len = parse_trailer(backend.read_range(key, size - TRAILER.size, size), size, key)
    start = size - TRAILER.size - header_len
    return parse_header(backend.read_range(key, start, size - TRAILER.size), start, algorithm, key)


def decode_blob(stored: bytes | memoryview, entry: PackEntry, algorithm: str, where: str) -> bytes:
    """Return a blob's raw bytes from what its pack stores, verified against its digest.

    :raises IntegrityError: if the bytes are short, do not decode, or do not hash to the digest.
    """
    if len(stored) != entry.stored_len:
        raise IntegrityError(f"blob {entry.digest} in {where} is cut short; run `plait verify`", digest=entry.digest)
    if entry.codec == CODEC_ZLIB:
        try:
            inflater = zlib.decompressobj()
            data = inflater.decompress(stored, entry.raw_len + 1)
        except zlib.error:
            raise IntegrityError(f"blob {entry.digest} in {where} is damaged: it does not decompress",
                                 digest=entry.digest) from None
    else:
        data = bytes(stored)
    if len(data) != entry.raw_len or hash_bytes(data, algorithm) != entry.digest:
        raise IntegrityError(f"blob {entry.digest} in {where} is damaged: its bytes do not match its digest",
                             digest=entry.digest)
    return data


class PackWriter:
    """Append blobs of one kind to a pack and store it once it reaches the target size.

    On a local store the pack is streamed into a temporary file beside the packs (no buffer),
    then linked to its name; elsewhere it is built in memory and sent with one exclusive PUT.
    Not thread-safe: the caller holds a lock.

    :param backend: where packs are stored.
    :param algorithm: the store's hash algorithm (blob digests and the pack's name).
    :param kind: ``KIND_DATA`` or ``KIND_TREE``.
    :param target: the size at which a pack is sealed.
    :param on_sealed: called with each pack once it is stored.
    """

    def __init__(self, backend: Backend, algorithm: str, kind: int, target: int,
                 on_sealed: Callable[[SealedPack], None]) -> None:
        self.backend = backend
        self.algorithm = algorithm
        self.kind = kind
        self.target = max(1, min(target, MAX_PACK_BYTES))
        self.on_sealed = on_sealed
        self.codec = CODEC_ZLIB if kind == KIND_TREE else CODEC_RAW
        self.entries = Entries(kind, self.codec)
        self.size = 0
        self._hasher = new_hasher(algorithm)
        self._parts: list[bytes] = []  # the pack's bytes, for a remote store (joined once, to send)
        self._staged: list[bytes] = []
        self._staged_len = 0
        self._file: int | None = None
        self._tmp = ""

    def add(self, digest: str, data: bytes | memoryview) -> PackEntry:
        """Append one blob (tree nodes are compressed on the way) and return where it sits.

        A blob that would push the pack past :data:`MAX_PACK_BYTES` seals the pack first.
        """
        stored = zlib.compress(data, 1) if self.codec == CODEC_ZLIB else data
        if self.entries and self.size + len(stored) > MAX_PACK_BYTES:
            self.seal()
        entry = PackEntry(digest, self.kind, self.codec, self.size, len(stored), len(data))
        self._write(stored)
        self.entries.append(digest, entry.stored_len, entry.raw_len)
        if self.size >= self.target:
            self.seal()
        return entry

    def _write(self, data: bytes | memoryview) -> None:
        """Stage bytes for the pack: they are hashed and written :data:`STAGE_BYTES` at a time
        (one system call for many small blobs); a blob that large (a chunk) is written at once,
        from the caller's buffer (no copy)."""
        self.size += len(data)
        if len(data) >= STAGE_BYTES:
            self._flush()
            self._emit(data)
            return
        self._staged.append(bytes(data) if isinstance(data, memoryview) else data)  # a view's buffer may be reused
        self._staged_len += len(data)
        if self._staged_len >= STAGE_BYTES:
            self._flush()

    def _flush(self) -> None:
        """Hash and write what is staged."""
        if not self._staged:
            return
        data = self._staged[0] if len(self._staged) == 1 else b"".join(self._staged)
        self._staged, self._staged_len = [], 0
        self._emit(data)

    def _emit(self, data: bytes | memoryview) -> None:
        """Hash bytes into the pack's name and write them (keep them, for a remote store)."""
        self._hasher.update(data)
        if not self.backend.is_local:
            self._parts.append(bytes(data))  # a copy of a view (its buffer is reused); a bytes object as it is
            return
        if self._file is None:
            folder = self.backend.local_path(PACKS_PREFIX)
            os.makedirs(folder, exist_ok=True)
            self._tmp = os.path.join(folder, f".pack.{random_suffix()}.tmp")
            self._file = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(self._file, view):]

    def pending(self, digest: str) -> PackEntry | None:
        """Return the entry of a blob appended to the open pack, if it is there."""
        if digest not in self.entries.digests:
            return None
        return next(e for e in self.entries if e.digest == digest)

    def seal(self) -> SealedPack | None:
        """Store the open pack (trailer appended, named by its digest); return it, or ``None`` if empty."""
        if not self.entries:
            return None
        tail = encode_header(self.entries, self.algorithm)
        self._write(tail)
        self._flush()
        pack_id = self._hasher.hexdigest()
        key = pack_key(pack_id)
        if self.backend.is_local:
            assert self._file is not None
            os.close(self._file)
            self._file = None
            path = self.backend.local_path(key)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                # a pack named so already holds these very bytes, random nonce included: it is this pack
                with contextlib.suppress(FileExistsError):
                    os.link(self._tmp, path)
            finally:
                unlink_quietly(self._tmp)
        else:
            payload, self._parts = b"".join(self._parts), []
            self.backend.create(key, payload)  # False: this very pack exists already (a retried PUT)
            del payload
        sealed = SealedPack(pack_id, self.size, self.entries)
        self._reset()
        if not self.backend.is_local:
            release_freed_memory()
        self.on_sealed(sealed)
        return sealed

    def abort(self) -> None:
        """Drop the open pack (its temporary file too); nothing it held is stored."""
        if self._file is not None:
            os.close(self._file)
            self._file = None
            unlink_quietly(self._tmp)
        self._reset()

    def _reset(self) -> None:
        self.entries = Entries(self.kind, self.codec)
        self.size = 0
        self._hasher = new_hasher(self.algorithm)
        self._parts = []
        self._staged, self._staged_len = [], 0
        self._tmp = ""


def release_freed_memory() -> None:
    """Give the memory of a remote pack's buffers back to the system, where the C library keeps it.

    A pack sent to an object store is built in memory (tens of MiB, copied once more to send).
    glibc serves such blocks from its heap once one has been freed (its mmap threshold follows the
    largest block freed) and keeps what is freed there: without this, a log to S3 kept ~8 MiB
    more per pack it sent (100,000 small files: 190 MB at its peak, 300,000: 235 MB).
    ``malloc_trim`` returns the free pages; elsewhere than glibc this does nothing.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None
