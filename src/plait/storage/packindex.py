"""Pack index files: which pack holds each blob, and where in it.

A writer stores one index file per publish, after all its packs, as ``index/<ulid>-<h8>``
(exclusive create; ``h8`` = the first hex digits of its content digest). Concurrent writers never
touch the same file, so there is nothing to lock and nothing to lose on an object store. Layout::

    "PLIX" ‖ version:u8 ‖ digest_bytes:u8 ‖ npacks:u32 ‖ nentries:u32 ‖ nsuper:u32
    packs:      npacks × pack id (raw digest)
    supersedes: nsuper × index file name ‖ \\0          (compacted index files only)
    fanout:     256 × u32 (entries whose digest's first byte is ≤ b)
    entries:    nentries × [digest ‖ pack#:u32 ‖ offset:u32 ‖ stored_len:u32 ‖ raw_len:u32 ‖ kind:u8 ‖ codec:u8 ‖ 2 × pad]
    trailer:    digest of everything above

A compacted index (gc) lists the union of the files it supersedes, minus packs gc deleted;
readers ignore superseded files. A damaged file is refused whole, never half-trusted.

Lookups never build a Python object per entry: each file keeps its digest column as one
``bytes``; a digest is found with ``bytes.find`` inside its fanout bucket (C speed), and a hit is
checked for alignment.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from plait.base.ids import new_ulid
from plait.errors import CorruptRecordError
from plait.storage.backend import Backend, write_local_file
from plait.storage.digest import hash_bytes
from plait.storage.packs import PackEntry, SealedPack, digest_size

INDEX_MAGIC = b"PLIX"
INDEX_VERSION = 1
INDEX_PREFIX = "index"
HEAD = struct.Struct("<4sBBIII")
RECORD = struct.Struct("<IIIIBBxx")
FANOUT = struct.Struct("<256I")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a blob is stored: its pack and its entry in it."""

    pack_id: str
    entry: PackEntry


def index_name(data: bytes, algorithm: str) -> str:
    """Return a fresh name for an index file holding ``data``."""
    return f"{new_ulid()}-{hash_bytes(data, algorithm)[:8]}"


def encode_index(packs: Iterable[SealedPack], algorithm: str, supersedes: Iterable[str] = ()) -> bytes:
    """Return an index file listing every entry of ``packs``.

    :param supersedes: names of the index files this one replaces (compaction).
    """
    width = digest_size(algorithm)
    pack_ids: list[str] = []
    digests: list[bytes] = []
    records: list[bytes] = []  # two columns, not an object per entry: a commit may list a million blobs
    for pack in packs:
        number = len(pack_ids)
        pack_ids.append(pack.pack_id)
        for e in pack.entries:
            digests.append(bytes.fromhex(e.digest))
            records.append(RECORD.pack(number, e.offset, e.stored_len, e.raw_len, e.kind, e.codec))
    order = sorted(range(len(digests)), key=digests.__getitem__)
    counts = [0] * 256
    for digest in digests:
        counts[digest[0]] += 1
    fanout, total = [], 0
    for count in counts:
        total += count
        fanout.append(total)
    supers = sorted(supersedes)
    parts = [HEAD.pack(INDEX_MAGIC, INDEX_VERSION, width, len(pack_ids), len(digests), len(supers)),
             b"".join(bytes.fromhex(p) for p in pack_ids),
             b"".join(s.encode() + b"\0" for s in supers),
             FANOUT.pack(*fanout),
             b"".join(digests[i] for i in order),
             b"".join(records[i] for i in order)]
    body = b"".join(parts)
    return body + bytes.fromhex(hash_bytes(body, algorithm))


class IndexFile:
    """One decoded index file: its packs, what it supersedes, and its entries, column by column.

    :raises CorruptRecordError: if the file is damaged, cut short or of another format.
    """

    def __init__(self, name: str, data: bytes, algorithm: str) -> None:
        self.name = name
        width = digest_size(algorithm)
        key = f"{INDEX_PREFIX}/{name}"
        damaged = CorruptRecordError(f"index file {key} is damaged; `plait verify --rebuild-index` rebuilds the index from the packs", key=key)
        if len(data) < HEAD.size + FANOUT.size + width:
            raise damaged
        body, trailer = data[:-width], data[-width:]
        if hash_bytes(body, algorithm) != trailer.hex():
            raise damaged
        magic, version, dwidth, npacks, nentries, nsuper = HEAD.unpack_from(body)
        if magic != INDEX_MAGIC or version != INDEX_VERSION or dwidth != width:
            raise CorruptRecordError(f"{key} is not an index file this plait reads (upgrade plait, or it is damaged)", key=key)
        pos = HEAD.size
        packs = body[pos : pos + npacks * width]
        pos += npacks * width
        self.pack_ids = [packs[i : i + width].hex() for i in range(0, len(packs), width)]
        self.supersedes: list[str] = []
        for _ in range(nsuper):
            end = body.find(b"\0", pos)
            if end < 0:
                raise damaged
            self.supersedes.append(body[pos:end].decode("ascii", "replace"))
            pos = end + 1
        if len(body) - pos != FANOUT.size + nentries * (width + RECORD.size) or len(self.pack_ids) != npacks:
            raise damaged
        self.fanout = (0, *FANOUT.unpack_from(body, pos))
        pos += FANOUT.size
        if self.fanout[-1] != nentries or any(a > b for a, b in zip(self.fanout, self.fanout[1:])):
            raise damaged
        self.width = width
        self.digests = body[pos : pos + nentries * width]
        self.records = body[pos + nentries * width :]
        self.count = nentries

    def find(self, raw: bytes) -> int:
        """Return the position of a raw digest in this file, or -1."""
        width = self.width
        first = raw[0]
        lo, hi = self.fanout[first] * width, self.fanout[first + 1] * width
        pos = self.digests.find(raw, lo, hi)
        while pos >= 0 and pos % width:
            pos = self.digests.find(raw, pos + 1, hi)
        return -1 if pos < 0 else pos // width

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


class PackIndex:
    """Every index file of one store, merged for lookups; refreshed with one listing.

    Index files are immutable, so each is read once per process; on a remote store a copy is
    kept in the local cache folder (``<cache>/index/<name>``), so a new process fetches only the
    files added since.

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
            self._listed = False
        if not self.backend.is_local:
            import shutil

            shutil.rmtree(os.path.join(self.cache_dir, INDEX_PREFIX), ignore_errors=True)
        self.refresh()

    def ensure(self) -> None:
        """Read the index once per process (later misses refresh explicitly)."""
        if not self._listed:
            self.refresh()

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

    def add_data(self, name: str, data: bytes) -> None:
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
        for index in self.active:
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
        for index in self.active:
            i = index.find(raw)  # the first of equal digests: they sit side by side, sorted
            while 0 <= i < index.count and index.digests[i * index.width : (i + 1) * index.width] == raw:
                out.append(Location(*index.entry(i)))
                i += 1
        return list({(loc.pack_id, loc.entry.offset): loc for loc in out}.values())

    def __contains__(self, digest: str) -> bool:
        raw = bytes.fromhex(digest)
        return any(index.find(raw) >= 0 for index in self.active)

    def packs(self) -> dict[str, list[PackEntry]]:
        """Return ``{pack id: entries}`` for every pack the active index files list."""
        out: dict[str, dict[tuple[int, str], PackEntry]] = {}
        for index in self.active:
            for pack_id, entry in index:
                # by offset and digest: an empty blob shares its offset with the blob after it
                out.setdefault(pack_id, {})[(entry.offset, entry.digest)] = entry
        return {p: sorted(e.values(), key=lambda x: (x.offset, x.stored_len > 0)) for p, e in out.items()}


def write_index(backend: Backend, packs: list[SealedPack], algorithm: str, supersedes: Iterable[str] = ()) -> tuple[str, bytes]:
    """Store one index file listing ``packs`` (exclusive create); return its name and bytes."""
    data = encode_index(packs, algorithm, supersedes)
    name = index_name(data, algorithm)
    backend.create(f"{INDEX_PREFIX}/{name}", data)
    return name, data
