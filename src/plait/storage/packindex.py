"""Pack index files: which pack holds each blob, and where in it.

A writer stores one index file per publish (a log, however long: see
:meth:`~plait.storage.packed.PackedBlobStore.checkpoint`), after all its packs, as ``index/<ulid>-<h8>``
(exclusive create; ``h8`` = the first hex digits of its trailer, the digest of the rest). Concurrent writers never
touch the same file, so there is nothing to lock and nothing to lose on an object store. Layout::

    "PLIX" ‖ version:u8 ‖ digest_bytes:u8 ‖ npacks:u32 ‖ nentries:u32 ‖ nsuper:u32
    packs:      npacks × pack id (raw digest)
    supersedes: nsuper × index file name ‖ \\0          (compacted index files only)
    fanout:     256 × u32 (entries whose digest's first byte is ≤ b)
    entries:    nentries × [digest ‖ pack#:u32 ‖ offset:u32 ‖ stored_len:u32 ‖ raw_len:u32 ‖ kind:u8 ‖ codec:u8 ‖ 2 × pad]
    trailer:    digest of everything above

A compacted index (gc) lists the union of the files it supersedes, minus packs gc deleted;
readers ignore superseded files. A damaged file is refused whole, never half-trusted.

Lookups never build a Python object per entry: a digest is found with ``bytes.find`` in the
file's own bytes, inside its fanout bucket (C speed), and a hit is checked for alignment; a large
file's buckets go by the first two bytes once it has been asked enough (until then a lookup
bisects its first-byte bucket). Whole-store passes (verify, gc) work on positions: a
``bytearray`` per file says what holds at each.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import sys
import threading
import time
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, compress, repeat
from operator import add, floordiv, itemgetter, mod, mul, ne, sub
from typing import BinaryIO

from plait.base.ids import new_ulid
from plait.errors import CorruptRecordError
from plait.storage.backend import Backend, temporary_name, unlink_quietly, write_local_file
from plait.storage.digest import hash_bytes, new_hasher
from plait.storage.packs import Entries, PackEntry, SealedPack, digest_size

INDEX_MAGIC = b"PLIX"
INDEX_VERSION = 1
INDEX_PREFIX = "index"
HEAD = struct.Struct("<4sBBIII")
RECORD = struct.Struct("<IIIIBBxx")
FANOUT = struct.Struct("<256I")
U32 = struct.Struct("<I")
#: u32 words per record: pack number, offset, stored length, raw length, kind | codec << 8.
WORDS = RECORD.size // 4
#: Above this many entries a file's fanout has a bucket per first two bytes, not one: a lookup
#: scans a few dozen entries, not thousands (1,000,000 entries: 8.6 µs a lookup with 256 buckets).
FANOUT2_ABOVE = 1 << 12
#: Fewer digests than this are looked up in a large file by bisection (~4 µs each) rather than
#: by first making its two-byte buckets (~12 ms for 65,536 entries).
BISECT_BELOW = 2048


@dataclass(frozen=True, slots=True)
class Location:
    """Where a blob is stored: its pack and its entry in it."""

    pack_id: str
    entry: PackEntry


def index_name(trailer: bytes | bytearray) -> str:
    """Return a fresh name for the index file whose trailer (the digest of the rest) is ``trailer``."""
    return f"{new_ulid()}-{bytes(trailer).hex()[:8]}"


def encode_index(packs: Iterable[SealedPack], algorithm: str, supersedes: Iterable[str] = ()) -> bytearray:
    """Return an index file listing every entry of ``packs``.

    Column by column (a pack written here keeps its entries as columns: see
    :class:`~plait.storage.packs.Entries`): the entries become rows (digest ‖ their order ‖
    record) sorted in one C call, as :func:`encode_merged` does; equal digests keep the order of
    ``packs``. A step of a long log lists 65,536 blobs: ~1 µs each, not ~6 with an object each.

    :param supersedes: names of the index files this one replaces (compaction).
    """
    width = digest_size(algorithm)
    pack_ids: list[str] = []
    digests, records = bytearray(), bytearray()
    for pack in packs:
        digests += _digest_column(pack)
        records += _record_column(pack, len(pack_ids))
        pack_ids.append(pack.pack_id)
    n = len(digests) // width
    row = width + 4 + RECORD.size
    buf = bytearray(n * row)
    _put_column(buf, row, 0, digests, width)
    _put_column(buf, row, width, _u32_column(range(n), big=True), 4)
    _put_column(buf, row, width + 4, records, RECORD.size)
    del digests, records
    joined = b"".join(sorted(map(itemgetter(0), struct.Struct(f"{row}s").iter_unpack(buf))))
    del buf
    out, at = _new_file(algorithm, pack_ids, supersedes, n)
    out[at : at + n * width] = gather(joined, row, 0, width, n)
    out[at + n * width : len(out) - width] = gather(joined, row, width + 4, RECORD.size, n)
    return _finished(out, at, n, algorithm)


def _digest_column(pack: SealedPack) -> bytes:
    entries = pack.entries
    return bytes.fromhex("".join(entries.digests if isinstance(entries, Entries) else (e.digest for e in entries)))


def _record_column(pack: SealedPack, number: int) -> bytearray:
    """Return the index records of a pack's entries, back to back, in its order."""
    entries = pack.entries
    n = len(entries)
    if isinstance(entries, Entries):
        offsets = array("I", accumulate(entries.stored, initial=0))
        offsets.pop()
        stored, raw = entries.stored, entries.raw
        kinds, codecs = bytes((entries.kind,)) * n, bytes((entries.codec,)) * n
    else:
        listed = list(entries)
        offsets = array("I", [e.offset for e in listed])
        stored, raw = [e.stored_len for e in listed], [e.raw_len for e in listed]  # type: ignore[assignment]
        kinds, codecs = bytes(e.kind for e in listed), bytes(e.codec for e in listed)
    out = bytearray(n * RECORD.size)  # pack# ‖ offset ‖ stored ‖ raw (u32 each) ‖ kind ‖ codec ‖ 2 × pad
    _put_column(out, RECORD.size, 0, _u32_column(repeat(number, n)), 4)
    _put_column(out, RECORD.size, 4, _u32_column(offsets), 4)
    _put_column(out, RECORD.size, 8, _u32_column(stored), 4)
    _put_column(out, RECORD.size, 12, _u32_column(raw), 4)
    _put_column(out, RECORD.size, 16, kinds, 1)
    _put_column(out, RECORD.size, 17, codecs, 1)
    return out


def _u32_column(values: Iterable[int], *, big: bool = False) -> bytes:
    """Return ``values`` as u32, little-endian (or big-endian: then they sort as they count)."""
    column = array("I", values)
    if (sys.byteorder == "big") != big:
        column.byteswap()
    return column.tobytes()


def _put_column(rows: bytearray, row: int, at: int, column: bytes | bytearray | memoryview, width: int) -> None:
    """Write a column of ``width``-byte values into bytes ``at:at+width`` of each row."""
    for j in range(width):
        rows[at + j :: row] = column[j::width]


def _head(algorithm: str, pack_ids: list[str], supersedes: Iterable[str], n: int) -> bytes:
    """Return what an index file of ``n`` entries starts with: its head, packs and superseded files."""
    width = digest_size(algorithm)
    supers = sorted(supersedes)
    return b"".join([HEAD.pack(INDEX_MAGIC, INDEX_VERSION, width, len(pack_ids), n, len(supers)),
                     b"".join(bytes.fromhex(p) for p in pack_ids), b"".join(s.encode() + b"\0" for s in supers)])


def _new_file(algorithm: str, pack_ids: list[str], supersedes: Iterable[str], n: int) -> tuple[bytearray, int]:
    """Return the bytes of an index file of ``n`` entries with its packs and superseded files
    filled in and the rest zero, and where its digest column starts (the records follow it)."""
    width = digest_size(algorithm)
    head = _head(algorithm, pack_ids, supersedes, n)
    out = bytearray(len(head) + FANOUT.size + n * (width + RECORD.size) + width)
    out[: len(head)] = head
    return out, len(head) + FANOUT.size


def _fanout(firsts: Counter[int]) -> bytes:
    """Return the fanout of a file whose digests start with each byte as often as ``firsts`` counts."""
    return FANOUT.pack(*accumulate(map(firsts.get, range(256), repeat(0))))


def _finished(out: bytearray, at: int, n: int, algorithm: str) -> bytearray:
    """Fill in the fanout and the trailer of an index file whose columns are written (in place)."""
    width = digest_size(algorithm)
    out[at - FANOUT.size : at] = _fanout(Counter(out[at : at + n * width : width]))
    out[len(out) - width :] = bytes.fromhex(hash_bytes(memoryview(out)[: len(out) - width], algorithm))
    return out


#: :func:`encode_merged` goes through the digests in this many ranges (by first byte), so it
#: holds one range's entries as objects at a time, never a million.
MERGE_RANGES = 16
#: What :func:`write_merged` reads back (and moves) at a time.
COPY_BYTES = 1 << 20
#: The pack number given to an entry of a dropped pack while merging.
_DROPPED = 0xFFFFFFFF


def gather(rows: bytes | bytearray | memoryview, row_size: int, start: int, width: int, n: int) -> bytearray:
    """Return bytes ``start:start+width`` of each of ``n`` rows of ``row_size`` bytes, back to back
    (one strided copy per byte of the column)."""
    out = bytearray(n * width)
    for b in range(width):
        out[b::width] = rows[start + b :: row_size]
    return out


def encode_merged(files: list[IndexFile], algorithm: str, drop: Iterable[str] = (), supersedes: Iterable[str] = ()) -> bytes:
    """Return one index file listing what ``files`` list, without the packs in ``drop`` (compaction).

    Built from the files' columns a range of digests at a time (see :func:`_merged_ranges`), in
    memory (:func:`write_merged` writes the same bytes to a file). Copies of one digest keep the
    order a read meets them in (``files`` go newest first, then by place); an entry two files
    list (same digest, pack and place in it) is listed once.
    """
    out = io.BytesIO()
    _write_merged(out, files, algorithm, drop, supersedes)
    return out.getvalue()


def write_merged(files: list[IndexFile], algorithm: str, path: str, drop: Iterable[str] = (),
                 supersedes: Iterable[str] = ()) -> bytes:
    """Write to ``path`` the index file :func:`encode_merged` returns; return its trailer. Only one
    range's entries are in memory besides ``files``: a log of a million files holds its own
    index once, not twice, when it lists it."""
    with open(path, "w+b") as f:
        return _write_merged(f, files, algorithm, drop, supersedes)


def _write_merged(f: BinaryIO, files: list[IndexFile], algorithm: str, drop: Iterable[str],
                  supersedes: Iterable[str]) -> bytes:
    """Write a merged index file to the empty file ``f``, a range of digests at a time; return its trailer.

    The columns go to their places as each range is merged; the head, the fanout and the trailer
    (the digest of everything before it, read back) once the count is known.
    """
    width = digest_size(algorithm)
    pack_ids, most, ranges = _merged_ranges(files, algorithm, drop)
    at = len(_head(algorithm, pack_ids, supersedes, most)) + FANOUT.size
    records_at = at + most * width
    firsts: Counter[int] = Counter()
    n = 0
    for digests, records in ranges:
        m = len(digests) // width
        f.seek(at + n * width)
        f.write(digests)
        f.seek(records_at + n * RECORD.size)
        f.write(records)
        firsts.update(digests[::width])
        n += m
    if n < most:  # entries two files listed were listed once: the records move up to follow the digests
        for done in range(0, n * RECORD.size, COPY_BYTES):
            f.seek(records_at + done)
            part = f.read(min(COPY_BYTES, n * RECORD.size - done))
            f.seek(at + n * width + done)
            f.write(part)
    f.truncate(at + n * (width + RECORD.size))
    f.seek(0)
    f.write(_head(algorithm, pack_ids, supersedes, n) + _fanout(firsts))
    f.seek(0)
    hasher = new_hasher(algorithm)
    while part := f.read(COPY_BYTES):
        hasher.update(part)
    trailer = bytes.fromhex(hasher.hexdigest())
    f.write(trailer)
    return trailer


def _merged_ranges(files: list[IndexFile], algorithm: str,
                   drop: Iterable[str]) -> tuple[list[str], int, Iterator[tuple[bytearray, bytearray]]]:
    """Return what merging ``files`` lists: its packs, how many entries at most, and its digest
    and record columns a range of digests at a time, in order (:data:`MERGE_RANGES` ranges).

    Each file's entries of a range become rows (digest ‖ the file's rank ‖ the entry's place in
    it ‖ record, its pack renumbered) made by strided copies, the rows of all files are sorted in
    one C call, and the columns are cut out again; an entry listed twice is kept once.
    """
    drop = set(drop)
    width = digest_size(algorithm)
    pack_ids = sorted({p for f in files for p in f.pack_ids if p not in drop})
    number = {p: n for n, p in enumerate(pack_ids)}
    renumber = [array("I", [number.get(p, _DROPPED) for p in f.pack_ids]) for f in files]
    most = sum(f.count for f in files)
    if drop:
        most -= sum(count for k, f in enumerate(files) for n, count in Counter(f.words[0::WORDS]).items()
                    if renumber[k][n] == _DROPPED)

    def ranges() -> Iterator[tuple[bytearray, bytearray]]:
        order = 8  # the file's rank and the entry's place in it, u32 each, big-endian: they sort as they count
        row = width + order + RECORD.size  # digest ‖ rank ‖ place ‖ record
        rows_of = struct.Struct(f"{row}s")
        entry_of = struct.Struct(f"{width + RECORD.size}s")
        step = 256 // MERGE_RANGES
        for lo in range(0, 256, step):
            rows: list[bytes] = []
            for rank, f in enumerate(files):
                a, b = f.fanout[lo], f.fanout[lo + step]
                if a < b:
                    rows += _rows(f, a, b, rank, renumber[rank], row, rows_of)
            if not rows:
                continue
            rows.sort()
            joined = b"".join(rows)
            del rows
            m = len(joined) // row
            digests, records = gather(joined, row, 0, width, m), gather(joined, row, width + order, RECORD.size, m)
            if len(set(map(itemgetter(0), _digest_struct(width).iter_unpack(digests)))) < m:  # a digest listed twice
                entry = width + RECORD.size
                both = bytearray(m * entry)
                _put_column(both, entry, 0, digests, width)
                _put_column(both, entry, width, records, RECORD.size)
                unique = b"".join(dict.fromkeys(map(itemgetter(0), entry_of.iter_unpack(both))))  # equal entries once
                m = len(unique) // entry
                digests, records = gather(unique, entry, 0, width, m), gather(unique, entry, width, RECORD.size, m)
            yield digests, records

    return pack_ids, most, ranges()


def _rows(f: IndexFile, a: int, b: int, rank: int, renumber: array, row: int, rows_of: struct.Struct) -> Iterable[bytes]:
    """Return entries ``a:b`` of ``f`` as sortable rows (see :func:`encode_merged`), those of dropped packs left out."""
    n, width = b - a, f.width
    words = array("I")
    words.frombytes(f.records[a * RECORD.size : b * RECORD.size])
    if sys.byteorder != "little":
        words.byteswap()
    packs = array("I", map(renumber.__getitem__, words[0::WORDS]))
    words[0::WORDS] = packs
    if sys.byteorder != "little":
        words.byteswap()
    buf = bytearray(n * row)
    _put_column(buf, row, 0, f.digests[a * width : b * width], width)
    _put_column(buf, row, width, _u32_column(repeat(rank, n), big=True), 4)
    _put_column(buf, row, width + 4, _u32_column(range(a, b), big=True), 4)
    _put_column(buf, row, width + 8, words.tobytes(), RECORD.size)
    part: Iterable[bytes] = map(itemgetter(0), rows_of.iter_unpack(buf))
    if _DROPPED in packs:
        part = compress(part, map(ne, packs, repeat(_DROPPED)))
    return part


class IndexFile:
    """One decoded index file: its packs, what it supersedes, and its entries, column by column.

    :raises CorruptRecordError: if the file is damaged, cut short or of another format.
    """

    def __init__(self, name: str, data: bytes | bytearray, algorithm: str) -> None:
        self.name = name
        width = digest_size(algorithm)
        key = f"{INDEX_PREFIX}/{name}"
        damaged = CorruptRecordError(f"index file {key} is damaged; `plait verify --rebuild-index` rebuilds the index from the packs", key=key)
        if len(data) < HEAD.size + FANOUT.size + width:
            raise damaged
        # views, not copies: a file of a million entries is 36 MB; only the digest column is copied
        body, trailer = memoryview(data)[:-width], data[-width:]
        if hash_bytes(body, algorithm) != trailer.hex():
            raise damaged
        magic, version, dwidth, npacks, nentries, nsuper = HEAD.unpack_from(body)
        if magic != INDEX_MAGIC or version != INDEX_VERSION or dwidth != width:
            raise CorruptRecordError(f"{key} is not an index file this plait reads (upgrade plait, or it is damaged)", key=key)
        pos = HEAD.size
        packs = data[pos : pos + npacks * width]
        pos += npacks * width
        self.pack_ids = [packs[i : i + width].hex() for i in range(0, len(packs), width)]
        self.supersedes: list[str] = []
        for _ in range(nsuper):
            end = data.find(b"\0", pos, len(body))
            if end < 0:
                raise damaged
            self.supersedes.append(data[pos:end].decode("ascii", "replace"))
            pos = end + 1
        if len(body) - pos != FANOUT.size + nentries * (width + RECORD.size) or len(self.pack_ids) != npacks:
            raise damaged
        self.fanout = (0, *FANOUT.unpack_from(body, pos))
        pos += FANOUT.size
        if self.fanout[-1] != nentries or any(a > b for a, b in zip(self.fanout, self.fanout[1:])):
            raise damaged
        self.width = width
        # the file's own bytes are searched (bytes.find from ``_at``): no copy of the digest column
        self._data, self._at = data, pos
        self.digests = memoryview(data)[pos : pos + nentries * width]
        self.records = body[pos + nentries * width :]  # a view of the file's bytes
        self.count = nentries
        self._fanout2: array | None = None
        self._bisected = 0
        self.words = _words(self.records)
        if nentries and max(self.words[0::WORDS]) >= npacks:
            raise CorruptRecordError(f"index file {key} names a pack it does not list; "
                                     "`plait verify --rebuild-index` rebuilds the index from the packs", key=key)

    def find(self, raw: bytes) -> int:
        """Return the (first) position of a raw digest in this file, or -1.

        A large file not yet given its two-byte buckets (a batch makes them, or the
        ``BISECT_BELOW``-th lookup) is bisected inside the digest's first-byte bucket: a few
        lookups never pay for building them (~12 ms a file, which ``show`` paid for every index
        file).
        """
        if self._fanout2 is None and self.count > FANOUT2_ABOVE and self._bisected < BISECT_BELOW:
            self._bisected += 1  # many lookups one at a time (a log asking per file) make the buckets after all
            lo, hi = self.fanout[raw[0]], self.fanout[raw[0] + 1]
            i = bisect_left(range(self.count), raw, lo, hi, key=self.digest)
            return i if i < hi and self.digest(i) == raw else -1
        width = self.width
        bounds = self._bounds()
        key = (raw[0] << 8 | raw[1]) if len(bounds) > 257 else raw[0]
        lo, hi = bounds[key] * width, bounds[key + 1] * width
        at = self._at
        pos = self._data.find(raw, at + lo, at + hi)
        while pos >= 0 and (pos - at) % width:
            pos = self._data.find(raw, pos + 1, at + hi)
        return -1 if pos < 0 else (pos - at) // width

    def find_all(self, raws: bytes) -> list[int]:
        """Return the (first) position of each raw digest of ``raws`` (back to back), or -1.

        The lookups run in C: ``map`` of ``bytes.find`` over each digest's fanout bucket, no
        Python loop per digest.
        """
        width = self.width
        if not raws or not self.count:
            return [-1] * (len(raws) // width)
        if self._fanout2 is None and self.count > FANOUT2_ABOVE and len(raws) < BISECT_BELOW * width:
            return [self.find(raws[k : k + width]) for k in range(0, len(raws), width)]
        bounds = self._bounds()
        keys = list(map(itemgetter(0), _key_struct(width, len(bounds) > 257).iter_unpack(raws)))
        at = self._at
        starts = map(add, map(mul, map(bounds.__getitem__, keys), repeat(width)), repeat(at))
        ends = map(add, map(mul, map(bounds.__getitem__, map(add, keys, repeat(1))), repeat(width)), repeat(at))
        where = list(map(self._data.find, map(itemgetter(0), _digest_struct(width).iter_unpack(raws)), starts, ends))
        misses = where.count(-1)
        found = list(map(sub, where, repeat(at)))  # into the column; a miss is -1 - at, below -1
        out = list(map(max, map(floordiv, found, repeat(width)), repeat(-1)))
        aligned = list(map(mod, found, repeat(width))).count(0) - (misses if (-1 - at) % width == 0 else 0)
        if misses + aligned != len(out):
            for k, pos in enumerate(found):
                if pos >= 0 and pos % width:  # matched across two entries: look again, aligned
                    out[k] = self.find(raws[k * width : (k + 1) * width])
        return out

    def _bounds(self) -> tuple[int, ...] | array:
        """Where each bucket of digests starts: by first byte, or (a large file) by first two
        bytes, so a lookup scans a few dozen entries at most (made once, in C: 256 KiB a file)."""
        if self.count <= FANOUT2_ABOVE:
            return self.fanout
        if self._fanout2 is None:
            width, column = self.width, bytearray(2 * self.count)
            column[0::2] = self.digests[0::width]
            column[1::2] = self.digests[1::width]
            keys = array("H")
            keys.frombytes(column)
            if sys.byteorder == "little":
                keys.byteswap()  # big-endian: sorted as the digests are
            counts = Counter(keys)  # a count per key, then their running sums: in C
            self._fanout2 = array("I", accumulate(map(counts.get, range(65536), repeat(0)), initial=0))
        return self._fanout2

    def digest(self, i: int) -> bytes:
        """Return the raw digest at position ``i``."""
        return bytes(self._data[self._at + i * self.width : self._at + (i + 1) * self.width])

    def copies(self, i: int) -> range:
        """Return the positions holding the digest at ``i`` (equal digests sit side by side)."""
        raw = self.digest(i)
        end = i + 1
        while end < self.count and self.digest(end) == raw:
            end += 1
        return range(i, end)

    def by_pack(self) -> dict[int, array]:
        """Return the positions of each pack's entries, by pack number (4 bytes an entry, no object each)."""
        groups: dict[int, array] = {}
        for i, number in enumerate(self.words[0::WORDS]):
            group = groups.get(number)
            if group is None:
                group = groups[number] = array("I")
            group.append(i)
        return groups

    def entry(self, i: int) -> tuple[str, PackEntry]:
        """Return ``(pack id, entry)`` at position ``i``."""
        number, offset, stored_len, raw_len, kind, codec = RECORD.unpack_from(self.records, i * RECORD.size)
        if number >= len(self.pack_ids):
            raise CorruptRecordError(f"index file {INDEX_PREFIX}/{self.name} names pack #{number} it does not list",
                                     key=f"{INDEX_PREFIX}/{self.name}")
        digest = self.digests[i * self.width : (i + 1) * self.width].hex()
        return self.pack_ids[number], PackEntry(digest, kind, codec, offset, stored_len, raw_len)

    def __iter__(self) -> Iterator[tuple[str, PackEntry]]:
        for i in range(self.count):
            yield self.entry(i)


@lru_cache(maxsize=4)
def _key_struct(width: int, two: bool) -> struct.Struct:
    return struct.Struct(f">H{width - 2}x" if two else f"B{width - 1}x")


@lru_cache(maxsize=4)
def _digest_struct(width: int) -> struct.Struct:
    return struct.Struct(f"{width}s")


def _words(records: bytes | memoryview) -> memoryview:
    """Return the records as little-endian u32 words (a view, no copy, on a little-endian machine)."""
    if sys.byteorder == "little":
        return memoryview(records).cast("I")
    words = array("I")
    words.frombytes(records)
    words.byteswap()
    return memoryview(words)


#: Index files of fewer entries than this (what a log of a few files writes) …
SMALL_FILE_BELOW = 65_536
#: … are looked up through one copy of them merged in memory, once there are more than this many …
SMALL_FILES_ABOVE = 8
#: … and this process has looked this many blobs up (a command that looks up a few never pays for it).
MERGE_AFTER = 256
#: The merged copy holds the newest small files up to this many entries (36 MiB): older ones are
#: searched apart until a gc compacts the index.
MERGED_AT_MOST = 1 << 20
#: What that merged copy is named, with a number (no index file in a store is named so).
MERGED_NAME = "merged-small-files"


class PackIndex:
    """Every index file of one store, merged for lookups; refreshed with one listing.

    Index files are immutable, so each is read once per process; on a remote store a copy is
    kept in the local cache folder (``<cache>/index/<name>``), so a new process fetches only the
    files added since.

    Each log adds an index file, and a lookup that misses looks in every one: a store logged to
    a thousand times would make every lookup cost a thousand searches until a gc compacts them.
    So lookups search the small files through one in-memory copy of them merged
    (:data:`SMALL_FILE_BELOW`); files added since it was made are searched apart until there are
    many. Verify and gc still see every file as it is (:attr:`active`).

    :param backend: the store's backend.
    :param algorithm: the store's hash algorithm.
    :param cache_dir: the store's local cache folder.
    """

    def __init__(self, backend: Backend, algorithm: str, cache_dir: str) -> None:
        self.backend = backend
        self.algorithm = algorithm
        self.cache_dir = cache_dir
        self.files: dict[str, IndexFile] = {}
        self.damaged: dict[str, str] = {}
        self._active: list[IndexFile] = []
        self._searched: list[IndexFile] | None = None  # what lookups search; None: to work out again
        self._merged: IndexFile | None = None
        self._merged_names: frozenset[str] = frozenset()
        self._lookups = 0
        self._merges = 0
        self._later: list[str] = []  # stored by this process, read when next needed (add_later)
        self._lock = threading.RLock()
        self._listed = False

    def refresh(self) -> None:
        """List the store's index files and read the ones not seen yet (damaged ones are set aside)."""
        with self._lock:
            known = set(self.files)  # before the listing: a file this process adds meanwhile is not "gone"
        names = [n for n in self.backend.listdir(INDEX_PREFIX) if not n.startswith(".")]
        with self._lock:
            new = [n for n in names if n not in self.files and n not in self.damaged]
            for name, data in self._read(new).items():
                self.add_data(name, data)
            gone = (known & set(self.files)) - set(names)
            for name in gone:  # deleted by gc once superseded
                del self.files[name]
            self._listed = True
            self._rebuild()

    def reload(self) -> None:
        """Forget every index file read so far and read them all again (verify: trust nothing cached)."""
        with self._lock:
            self.files.clear()
            self.damaged.clear()
            self._merged, self._merged_names = None, frozenset()
            self._listed = False
        if not self.backend.is_local:
            import shutil

            shutil.rmtree(os.path.join(self.cache_dir, INDEX_PREFIX), ignore_errors=True)
        self.refresh()

    def ensure(self) -> None:
        """Read the index once per process (later misses refresh explicitly)."""
        if not self._listed:
            self.refresh()
        elif self._later:
            self._read_later()

    def _read(self, names: list[str]) -> dict[str, bytes]:
        if self.backend.is_local:
            got = self.backend.read_many([f"{INDEX_PREFIX}/{n}" for n in names])
            return {k.rsplit("/", 1)[-1]: v for k, v in got.items()}
        out: dict[str, bytes] = {}
        fetch = []
        folder = os.path.join(self.cache_dir, INDEX_PREFIX)
        for name in names:
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    out[name] = f.read()
            except FileNotFoundError:
                fetch.append(name)
        if fetch:
            os.makedirs(folder, exist_ok=True)
            for key, data in self.backend.read_many([f"{INDEX_PREFIX}/{n}" for n in fetch]).items():
                name = key.rsplit("/", 1)[-1]
                out[name] = data
                write_local_file(os.path.join(folder, name), data)
        return out

    def add_later(self, name: str) -> None:
        """Take the index file ``name``, just stored by this process, into the merged view when
        the next lookup needs it (read from the store, or from the cache folder when a copy is
        there): a long log lists its own blobs in memory until then, never twice at once."""
        with self._lock:
            self._later.append(name)
            self._searched = None

    def _read_later(self) -> None:
        with self._lock:
            names, self._later = self._later, []
            for name, data in self._read([n for n in names if n not in self.files]).items():
                self.add_data(name, data)

    def add_data(self, name: str, data: bytes | bytearray) -> None:
        """Take one index file's bytes into the merged view (a damaged one is set aside)."""
        with self._lock:
            try:
                self.files[name] = IndexFile(name, data, self.algorithm)
            except CorruptRecordError as exc:
                self.damaged[name] = str(exc)
                return
            self._rebuild()

    def _rebuild(self) -> None:
        superseded = {s for f in self.files.values() for s in f.supersedes}
        # newest first: a compacted file answers before the (ignored) files it replaces
        self._active = [self.files[n] for n in sorted(self.files, reverse=True) if n not in superseded]
        self._searched = None

    def searched(self, lookups: int = 1) -> list[IndexFile]:
        """Return the files a lookup searches, newest first: the active ones, the small ones
        merged into one once that pays (see :data:`SMALL_FILE_BELOW`).

        :param lookups: how many blobs the caller is about to look up.
        """
        self.ensure()
        with self._lock:
            before, self._lookups = self._lookups, self._lookups + lookups
            if self._searched is None or (before < MERGE_AFTER <= self._lookups):
                self._searched = self._search_list(self._lookups >= MERGE_AFTER)
            return self._searched

    def merge_small(self) -> tuple[IndexFile, frozenset[str]] | None:
        """Merge the small files now if there are enough of them (a caller about to look up most
        blobs: verify); return the merged copy and the names of the files in it, or ``None``."""
        self.ensure()
        with self._lock:
            self._searched = self._search_list(True)
            return (self._merged, self._merged_names) if self._merged in self._searched else None

    def _search_list(self, merge: bool) -> list[IndexFile]:
        small = [f for f in self._active if f.count < SMALL_FILE_BELOW]  # newest first
        if len(small) <= SMALL_FILES_ABOVE or not merge:
            return self._active
        active = {f.name for f in self._active}
        since, left = 0, len(self._merged_names)  # small files newer than the copy's oldest, not in it
        for f in small:
            if not left:
                break
            if f.name in self._merged_names:
                left -= 1
            else:
                since += 1
        # the copy stays while every file in it is active, and only a few small files came since
        if self._merged is None or not self._merged_names <= active or since > SMALL_FILES_ABOVE:
            take, entries = [], 0
            for f in small:  # the newest, up to MERGED_AT_MOST entries: the rest are searched apart
                if entries + f.count > MERGED_AT_MOST:
                    break
                take.append(f)
                entries += f.count
            if len(take) < 2:
                return self._active
            self._merges += 1  # a new name for each copy: what was checked of one is never taken for another's
            self._merged = IndexFile(f"{MERGED_NAME}-{self._merges}", encode_merged(take, self.algorithm), self.algorithm)
            self._merged_names = frozenset(f.name for f in take)
        return [f for f in self._active if f.name not in self._merged_names] + [self._merged]

    @property
    def active(self) -> list[IndexFile]:
        """The index files that count (those no compacted file supersedes), newest first."""
        self.ensure()
        return self._active

    def locate(self, digest: str, skip: frozenset[str] = frozenset()) -> Location | None:
        """Return where a blob is stored, or ``None`` if no index file lists it.

        :param skip: packs not to answer with (being deleted, or found missing).
        """
        raw = bytes.fromhex(digest)
        for index in self.searched():
            i = index.find(raw)
            if i >= 0:
                pack_id, entry = index.entry(i)
                if pack_id not in skip:
                    return Location(pack_id, entry)
                for location in self.locate_all(digest):
                    if location.pack_id not in skip:
                        return location
                return None
        return None

    def locate_all(self, digest: str) -> list[Location]:
        """Return every stored copy of a blob (duplicates are legal)."""
        raw = bytes.fromhex(digest)
        out = []
        for index in self.searched():
            i = index.find(raw)  # the first of equal digests: they sit side by side, sorted
            while 0 <= i < index.count and index.digests[i * index.width : (i + 1) * index.width] == raw:
                out.append(Location(*index.entry(i)))
                i += 1
        return list({(loc.pack_id, loc.entry.offset): loc for loc in out}.values())

    def __contains__(self, digest: str) -> bool:
        raw = bytes.fromhex(digest)
        return any(index.find(raw) >= 0 for index in self.searched())

    def position(self, raw: bytes, skip: frozenset[str] = frozenset()) -> tuple[IndexFile, int] | None:
        """Return ``(index file, position)`` of the copy of a blob a read takes (as :meth:`locate`
        finds it), or ``None``.

        :param raw: the blob's raw digest.
        :param skip: packs not to answer with.
        """
        for index in self.searched():
            i = index.find(raw)
            if i < 0:
                continue
            if not skip:
                return index, i
            for j in index.copies(i):
                if index.pack_ids[index.words[j * WORDS]] not in skip:
                    return index, j
        return None

    def find_all(self, raws: bytes) -> list[tuple[IndexFile, int] | None]:
        """Return where the copy a read takes of each raw digest of ``raws`` (back to back) is:
        ``(index file, position)``, or ``None`` (looked up file by file, in C: see :meth:`IndexFile.find_all`)."""
        width = digest_size(self.algorithm)
        out: list[tuple[IndexFile, int] | None] = [None] * (len(raws) // width)
        todo = list(range(len(out)))
        for index in self.searched(len(out)):
            if not todo:
                break
            column = raws if len(todo) == len(out) else b"".join(raws[k * width : (k + 1) * width] for k in todo)
            rest = []
            for k, i in zip(todo, index.find_all(column)):
                if i < 0:
                    rest.append(k)
                else:
                    out[k] = (index, i)
            todo = rest
        return out

    def packs(self) -> dict[str, list[PackEntry]]:
        """Return ``{pack id: entries}`` for every pack the active index files list."""
        out: dict[str, dict[tuple[int, str], PackEntry]] = {}
        for index in self.active:
            for pack_id, entry in index:
                # by offset and digest: an empty blob shares its offset with the blob after it
                out.setdefault(pack_id, {})[(entry.offset, entry.digest)] = entry
        return {p: sorted(e.values(), key=lambda x: (x.offset, x.stored_len > 0)) for p, e in out.items()}


def by_pack(files: Iterable[IndexFile]) -> dict[str, list[tuple[IndexFile, array]]]:
    """Return, for every pack ``files`` list, the positions of its entries in each file that
    lists it (4 bytes an entry: no object per blob)."""
    out: dict[str, list[tuple[IndexFile, array]]] = {}
    for index in files:
        for number, positions in index.by_pack().items():
            out.setdefault(index.pack_ids[number], []).append((index, positions))
    return out


def write_index(backend: Backend, packs: list[SealedPack], algorithm: str,
                supersedes: Iterable[str] = ()) -> tuple[str, bytes | bytearray]:
    """Store one index file listing ``packs`` (exclusive create); return its name and bytes."""
    return store_index(backend, encode_index(packs, algorithm, supersedes), algorithm)


def store_index(backend: Backend, data: bytes | bytearray, algorithm: str) -> tuple[str, bytes | bytearray]:
    """Store an encoded index file under a fresh name (exclusive create); return its name and bytes."""
    name = index_name(data[-digest_size(algorithm):])
    backend.create(f"{INDEX_PREFIX}/{name}", data)
    return name, data


def store_merged(backend: Backend, files: list[IndexFile], algorithm: str, cache_dir: str) -> str:
    """Store one index file listing what ``files`` list under a fresh name (exclusive create),
    without holding it in memory; return its name (:meth:`PackIndex.add_later` takes it in).

    It is written a range at a time (:func:`write_merged`) to a temporary file: beside the index
    files of a local store, then linked into place; in the cache folder of a remote one, then
    sent and kept there as the copy :class:`PackIndex` reads. The temporary file never stays
    (a crash leaves one that ``plait gc`` removes once it is a grace period old).
    """
    folder = backend.local_path(INDEX_PREFIX) if backend.is_local else os.path.join(cache_dir, INDEX_PREFIX)
    os.makedirs(folder, exist_ok=True)
    if not backend.is_local:  # no gc looks in a cache folder: a killed writer's temporary goes with the next one's
        _drop_stale_temporaries(folder)
    tmp = temporary_name(os.path.join(folder, "merged"))  # .merged.<random>.tmp: listings skip it
    try:
        name = index_name(write_merged(files, algorithm, tmp))
        if backend.is_local:
            os.link(tmp, backend.local_path(f"{INDEX_PREFIX}/{name}"))  # exclusive: a fresh name is never taken
        else:
            with open(tmp, "rb") as f:
                backend.create(f"{INDEX_PREFIX}/{name}", f.read())
            os.replace(tmp, os.path.join(folder, name))
        return name
    finally:
        unlink_quietly(tmp)


#: A temporary index file in a cache folder older than this was left by a writer that died.
STALE_TEMPORARY_SECONDS = 3600


def _drop_stale_temporaries(folder: str) -> None:
    """Remove the temporary index files killed writers left in ``folder`` (an hour old or more)."""
    now = time.time()
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".merged.") and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < now - STALE_TEMPORARY_SECONDS:
                        os.unlink(entry.path)
