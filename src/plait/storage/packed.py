"""PackedBlobStore: the blob API of a format-2 store, with blobs kept in packs.

Blobs written by a process go into open packs (one for data, one for tree nodes); a pack is
stored once it reaches the target size, and :meth:`PackedBlobStore.commit` stores the rest and
one index file listing them all. The store calls ``commit`` before every version record, so the
order that keeps a crash harmless holds: packs, then the index file, then the record.

Reads find a blob through the index (:class:`~plait.storage.packindex.PackIndex`), read its
range of the pack and verify it. Format-1 loose blobs (``blobs/<ab>/<digest>``) are read
forever, so a migrated store needs no copy to stay whole.
"""

from __future__ import annotations

import io
import os
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import compress, repeat
from operator import add, ge, mul, not_
from typing import IO, Any

from plait.base.parallel import parallel_map
from plait.errors import FileChangedError, IntegrityError, SourceError, StoreError
from plait.storage.backend import Backend, write_local_file
from plait.storage.blobs import BlobStore, blob_key
from plait.storage.digest import FileDigest, bytes_hasher, digest_file, hash_bytes, iter_chunks, read_small
from plait.storage.packcheck import check_all, check_groups
from plait.storage.packindex import (
    WORDS,
    IndexFile,
    Location,
    PackIndex,
    by_pack,
    encode_index,
    store_index,
    store_merged,
)
from plait.storage.packs import (
    KIND_DATA,
    KIND_TREE,
    KINDS,
    Entries,
    PackEntry,
    PackWriter,
    SealedPack,
    decode_blob,
    pack_key,
)

#: Ranges of one pack closer than this are fetched with one request.
COALESCE_GAP = 1 << 20
#: The most bytes one coalesced request fetches.
MAX_RANGE = 16 << 20
#: :meth:`PackedBlobStore.ingest` hands its threads batches of this many files or bytes.
INGEST_BATCH_FILES = 256
INGEST_BATCH_BYTES = 8 << 20
#: Threads reading and hashing small files (file reads and xxh3 release the GIL).
INGEST_WORKERS = 2

#: ``(inode, size, mtime_ns)`` of a local file (see :func:`plait.storage.digest.stat_key`).
StatKey = tuple[int, int, int]


class PackedBlobStore(BlobStore):
    """Content-addressed blobs in packs, on one backend.

    :param backend: the store's storage primitives.
    :param algorithm: the store's hash algorithm.
    :param cache_dir: the local cache folder (index files of a remote store, blobs read out).
    :param index: the store's merged pack index (shared by the store objects of one URL).
    :param target: the pack size at which a pack is stored.
    :param loose: whether loose format-1 blobs may exist (a migrated store).
    """

    def __init__(self, backend: Backend, algorithm: str, cache_dir: str, index: PackIndex, *,
                 target: int, loose: bool = False) -> None:
        super().__init__(backend, algorithm, cache_dir)
        self.verified_reads = True  # open() yields bytes read() verified: write_entry hashes each chunk no second time
        self.index = index
        self.target = target
        self.loose = loose
        self._lock = threading.RLock()
        self._commit_lock = threading.Lock()
        self._pending: dict[str, PackWriter] = {}
        self._sealed: list[SealedPack] = []
        self._uncommitted: dict[str, SealedPack] = {}  # stored, not yet in an index file: the pack it is in
        self._local: list[IndexFile] = []  # packs stored since the last commit, kept compact: see checkpoint()
        self._entries: dict[str, dict[str, PackEntry]] = {}  # of an uncommitted pack, by digest (made when read)
        self._gone: set[str] = set()
        self._dropped: set[str] = set()
        self._aborts = 0  # open packs dropped so far: a log that began before the last one must not commit
        self._thread = threading.local()
        self._checked: dict[str, bytearray] | None = None
        self._loose: set[str] | None = None
        self._writers = {kind: PackWriter(backend, algorithm, kind, target, self._on_sealed) for kind in KINDS.values()}

    # -- what is stored ---------------------------------------------------------------------

    def has(self, digest: str) -> bool:
        """Tell whether the blob is stored, or written by this process and about to be."""
        if digest in self._known or digest in self._pending or digest in self._uncommitted or self._in_local(digest):
            return True
        if digest in self.index if not self._gone else self.index.locate(digest, frozenset(self._gone)) is not None:
            return True
        return self.loose and digest in self._loose_blobs()

    def _in_local(self, digest: str) -> tuple[IndexFile, int] | None:
        """Return where a blob stored since the last commit sits in the local index, or ``None``."""
        if self._local:
            raw = bytes.fromhex(digest)
            for local in self._local:
                i = local.find(raw)
                if i >= 0:
                    return local, i
        return None

    def _loose_blobs(self) -> set[str]:
        if self._loose is None:  # one listing, not a request per blob
            self._loose = {k.rsplit("/", 1)[-1] for k in self.backend.find("blobs")}
        return self._loose

    def missing(self, digests: Iterable[str]) -> list[str]:
        """Return the digests the store lacks (after one listing of the index files)."""
        self.index.refresh()
        return [d for d in dict.fromkeys(digests) if not self.has(d)]

    # -- writing ----------------------------------------------------------------------------

    def put_bytes(self, data: bytes, kind: str = "data") -> str:
        """Store ``data`` as a blob (if new) and return its digest.

        :param kind: ``"data"`` (file contents) or ``"tree"`` (tree nodes: kept in their own packs).
        """
        digest = hash_bytes(data, self.algorithm)
        self._add(digest, data, KINDS[kind])
        return digest

    def _add(self, digest: str, data: bytes | memoryview, kind: int) -> bool:
        with self._lock:
            if self.has(digest):
                return False
            self._append(digest, data, kind)
            return True

    def put_verified(self, digest: str, data: bytes, kind: str = "data") -> None:
        """Store bytes already verified against ``digest`` (read from another store), if new."""
        self._add(digest, data, KINDS[kind])

    def kind_of(self, digest: str) -> str:
        """Return what a stored blob holds: ``"data"`` or ``"tree"``."""
        location = self.locate(digest)
        return "tree" if location is not None and location.entry.kind == KIND_TREE else "data"

    def _on_sealed(self, pack: SealedPack) -> None:
        self._sealed.append(pack)
        for digest in _digests(pack):
            self._pending.pop(digest, None)
            self._uncommitted[digest] = pack

    def _put_file(self, path: str, fd: FileDigest, on_bytes: Callable[[int], Any] | None) -> int:
        """Append the blobs of one hashed file the store lacks to the open data pack.

        The bytes appended are the bytes hashed here, compared with what hashing found before:
        a file rewritten since is refused, never stored under a name its bytes do not have.
        """
        if fd.chunks is None:
            if self.has(fd.digest):
                return 0
            with open(path, "rb") as f:
                data = f.read(fd.size + 1)
            if len(data) != fd.size or hash_bytes(data, self.algorithm) != fd.digest:
                raise FileChangedError(f"{path} changed while it was being stored; log it again", path=path)
            written = fd.size if self._add(fd.digest, data, KIND_DATA) else 0
            if on_bytes:
                on_bytes(fd.size)
            return written
        need = set(self.missing(d for d, _ in fd.chunks))
        written = 0
        for digest, data in iter_chunks(path, fd.chunks):
            if digest in need:
                if hash_bytes(data, self.algorithm) != digest:
                    raise FileChangedError(f"{path} changed after it was hashed; log it again", path=path)
                need.discard(digest)
                if self._add(digest, data, KIND_DATA):
                    written += len(data)
            if on_bytes:
                on_bytes(len(data))
        return written

    def ingest_file(self, path: str, on_bytes: Callable[[int], Any] | None = None) -> FileDigest:
        """Read, cut, hash and store one large local file in one pass; return what hashing found.

        The file is read once (:func:`~plait.storage.digest.digest_file` with a sink): each
        chunk the store lacks is appended to the open data pack as it is hashed, so the bytes
        stored are the bytes hashed. A file that changed while it was read is refused; the
        chunks appended meanwhile hash to their names (garbage for gc at most, never a wrong blob),
        and no index file or record names them until a log commits.

        :raises SourceError: for a file that vanished or cannot be read.
        :raises FileChangedError: for a file that changed while it was read.
        """
        self.index.refresh()

        def keep(digest: str, data: memoryview) -> None:
            with self._lock:
                if not self.has(digest):
                    self._append(digest, data, KIND_DATA)

        fd = digest_file(path, self.algorithm, on_bytes=on_bytes, sink=keep)
        if fd.chunks is None:  # below the threshold after all (it shrank since the walk): one blob, read again
            self.put_file(path, fd)
        return fd

    def ingest(self, files: list[tuple[str, StatKey]], on_bytes: Callable[[int], Any] | None = None,
               workers: int = INGEST_WORKERS) -> list[str]:
        """Read, hash and store small local files in one pass; return their digests, in order.

        Each file is read once (:func:`~plait.storage.digest.read_small`): the bytes hashed are
        the bytes appended, so nothing is stored under a name its bytes do not have. Threads take
        batches of files; each appends its batch's new blobs to the open data pack under one lock.

        :param files: ``(path, stat key)`` of files below the chunking threshold, as found by the walk.
        :param on_bytes: called with the bytes of each batch read, for progress.
        :raises SourceError: for a file that vanished or cannot be read.
        :raises FileChangedError: for a file that is not as found, or changed while read.
        """
        self.index.refresh()
        digest_of = bytes_hasher(self.algorithm)
        batches: list[list[tuple[str, StatKey]]] = []
        batch: list[tuple[str, StatKey]] = []
        weight = 0
        for item in files:
            batch.append(item)
            weight += item[1][1]
            if len(batch) >= INGEST_BATCH_FILES or weight >= INGEST_BATCH_BYTES:
                batches.append(batch)
                batch, weight = [], 0
        if batch:
            batches.append(batch)

        def one(batch: list[tuple[str, StatKey]]) -> list[str]:
            read = [read_small(path, key) for path, key in batch]
            digests = [digest_of(data) for data in read]
            with self._lock:
                for digest, data in zip(digests, read):
                    if not self.has(digest):
                        self._append(digest, data, KIND_DATA)
            if on_bytes:
                on_bytes(sum(map(len, read)))
            return digests

        return [d for done in parallel_map(one, batches, workers) for d in done]

    def commit(self) -> str | None:
        """Store the open packs and one index file listing every pack this process stored since
        the last commit; return the index file's name (``None`` when nothing was written).

        Called before a version record is created: once it returns, every blob put so far is
        findable by any reader. The packs of a long log's :meth:`checkpoint` steps are listed in
        the same file: a log adds one index file to the store, however many files it holds.
        """
        with self._commit_lock:
            sealed = self._seal(checked=True)
            local = self._local
            if not sealed and not local:
                return None
            try:
                data = encode_index(sealed, self.algorithm)
                if local:  # newest first, as reads look: what was sealed last, then the steps
                    files = [IndexFile("sealed", data, self.algorithm), *local]
                    del data
                    name = store_merged(self.backend, files, self.algorithm, self.index.cache_dir)
                else:
                    name, data = store_index(self.backend, data, self.algorithm)
            except BaseException:
                with self._lock:
                    self._sealed[:0] = sealed
                raise
            if local:  # read when next looked in, once the steps' indexes are dropped: never both at once
                self.index.add_later(name)
            else:
                self.index.add_data(name, data)
            with self._lock:
                self._local = []
                self._forget_uncommitted(sealed)
            return name

    def checkpoint(self) -> None:
        """Seal the open packs and keep what they hold as a local index, listed in the store by
        the next :meth:`commit`.

        A long log calls this every so many files: a blob not yet listed costs ~200 bytes
        (its digest and entry as objects), one in the local index 36 bytes (a row of columns),
        so its memory stays flat; and the store gets one index file for the whole log, not one
        per step (every later lookup looks in each index file). A crash before the commit
        leaves packs no index file lists, which gc deletes as it does those of any writer that
        died before its index file.
        """
        with self._commit_lock:
            sealed = self._seal(checked=False)
            if not sealed:
                return
            local = IndexFile(f"local-{len(self._local)}", encode_index(sealed, self.algorithm), self.algorithm)
            with self._lock:
                self._local = [local, *self._local]  # a new list: lookups on other threads iterate the old one
                self._forget_uncommitted(sealed)

    def _seal(self, *, checked: bool) -> list[SealedPack]:
        """Seal the open packs and take every pack sealed since the last commit or checkpoint.

        :param checked: refuse a log whose open packs a failed write dropped (a commit).
        """
        with self._lock:
            began = getattr(self._thread, "began", None)
            if checked and began is not None and began != self._aborts:
                self._thread.began = self._aborts  # refused once: logging again stores the blobs anew
                raise StoreError("writing a pack failed while this log was storing its files, and the open packs "
                                 "holding some of them were dropped; nothing names them: log again")
            if checked and began is None and self._dropped:  # a commit no log began (sync, gc): the first one after the drop
                count, self._dropped = len(self._dropped), set()
                raise StoreError(f"{count} blob(s) of this process were dropped when writing a pack failed; "
                                 "nothing names them: log again")
            try:
                for writer in self._writers.values():
                    writer.seal()
            except BaseException:
                self.abort()
                raise
            sealed, self._sealed = self._sealed, []
            return sealed

    def _forget_uncommitted(self, sealed: list[SealedPack]) -> None:
        """Drop the per-blob entries of packs an index (stored or local) lists now (under the lock)."""
        for pack in sealed:
            self._entries.pop(pack.pack_id, None)
            for digest in _digests(pack):
                self._uncommitted.pop(digest, None)

    def begin(self) -> None:
        """Start a log's storing on this thread: its commit is refused if a failed write drops the
        open packs before then (they may hold its blobs, whichever thread's write failed)."""
        self._thread.began = self._aborts

    def end(self) -> None:
        """End what :meth:`begin` started on this thread (its version record is created)."""
        self._thread.began = None

    def protect(self, digests: Iterable[str]) -> list[str]:
        """Keep blobs a gc marked: write each again, into a pack of this process, and commit.

        A pack holds many blobs, so it cannot be touched for one of them (that would spare all);
        a copy in a new pack is what the sweep's last check ("every blob still needed has a copy
        in another pack") finds.

        :param digests: stored blobs a log reuses that a gc mark lists.
        :returns: those already gone (their pack was swept): the caller stores them again.
        """
        lost = []
        for digest in digests:
            location = self.locate(digest)
            try:
                data = self.read(digest)
            except IntegrityError:
                lost.append(digest)
                continue
            if location is not None:
                self.rewrite(digest, data, location.entry.kind)
            elif self.loose:
                self.backend.touch(blob_key(digest))  # a format-1 blob: touched, as format 1 does
        self.commit()
        self.forget(lost)
        return lost

    def rewrite(self, digest: str, data: bytes, kind: int) -> None:
        """Append a copy of a stored blob to this process's open pack (gc repack, protect)."""
        with self._lock:
            if digest in self._pending or digest in self._uncommitted or self._in_local(digest):
                return  # a new copy is being written already (or is, unlisted yet)
            self._append(digest, data, kind)

    def _append(self, digest: str, data: bytes | memoryview, kind: int) -> None:
        """Append a blob to the open pack of its kind; a write that fails (a full disk) drops
        the open packs, so no temporary file is left behind."""
        writer = self._writers[kind]
        self._pending[digest] = writer
        try:
            writer.add(digest, data)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the open packs (nothing in them is stored) and forget the packs sealed since the
        last commit or checkpoint (no index file will list them: garbage for gc). The packs of
        the local index stay: whole, and consistent among themselves, so the next commit lists them.

        Every log that :meth:`began <begin>` before then has its commit refused, and so has the
        next commit of anything else: a log that put blobs into a dropped pack must not create a
        version naming them.
        """
        with self._lock:
            for writer in self._writers.values():
                writer.abort()
            # packs sealed but not yet indexed are dropped too: a tree node there may name a blob
            # of a dropped pack, and a re-log would take its folder whole (they are gc's garbage)
            self._dropped.update(self._pending, self._uncommitted)
            self._pending.clear()
            self._uncommitted.clear()
            self._entries.clear()
            self._sealed.clear()
            self._aborts += 1

    # -- reading ----------------------------------------------------------------------------

    def locate(self, digest: str) -> Location | None:
        """Return where a blob is packed (re-listing the index once on a miss), or ``None``."""
        with self._lock:
            writer = self._pending.get(digest)
            if writer is not None:
                writer.seal()  # readable only once stored
            pack = self._uncommitted.get(digest)
            if pack is not None:
                entries = self._entries.get(pack.pack_id)
                if entries is None:
                    entries = self._entries[pack.pack_id] = {e.digest: e for e in pack.entries}
                return Location(pack.pack_id, entries[digest])
        local = self._in_local(digest)
        if local is not None:
            return Location(*local[0].entry(local[1]))
        skip = frozenset(self._gone)
        found = self.index.locate(digest, skip)
        if found is None:
            self.index.refresh()
            found = self.index.locate(digest, skip)
        return found

    def read(self, digest: str) -> bytes:
        """Return a blob's bytes, verified against its digest.

        :raises IntegrityError: if the bytes do not match, or the blob is missing.
        """
        for _ in range(3):  # a pack gc replaced since the index was read: look again
            location = self.locate(digest)
            if location is None:
                return super().read(digest)  # a format-1 loose blob, or missing
            try:
                stored = self.backend.read_range(pack_key(location.pack_id), location.entry.offset,
                                                 location.entry.offset + location.entry.stored_len)
            except FileNotFoundError:
                self._gone.add(location.pack_id)
                self.index.refresh()
                continue
            return decode_blob(stored, location.entry, self.algorithm, pack_key(location.pack_id))
        raise IntegrityError(f"blob {digest} is missing from the store", digest=digest)

    @contextmanager
    def open(self, digest: str) -> Iterator[IO[bytes]]:
        """Open a blob for reading (its verified bytes)."""
        cached = os.path.join(self.cache_dir, "blobs", digest[:2], digest)
        if os.path.isfile(cached):
            with open(cached, "rb") as f:
                yield f
            return
        yield io.BytesIO(self.read(digest))

    def local_copy(self, digest: str) -> str:
        """Return a local file holding the blob: a verified copy in the cache folder."""
        return self._cached_copy(digest)

    def _cached_copy(self, digest: str) -> str:
        cached = os.path.join(self.cache_dir, "blobs", digest[:2], digest)
        if not os.path.isfile(cached):
            self._keep(digest, self.read(digest))
        return cached

    def _keep(self, digest: str, data: bytes) -> None:
        cached = os.path.join(self.cache_dir, "blobs", digest[:2], digest)
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        write_local_file(cached, data)

    def read_many(self, digests: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(digest, verified bytes)`` for blobs, fetching each pack's ranges together.

        Blobs of one pack are read in offset order, neighbours within :data:`COALESCE_GAP`
        with one request.

        :raises IntegrityError: for a missing or damaged blob.
        """
        by_pack: dict[str, list[PackEntry]] = {}
        loose = []
        for digest in dict.fromkeys(digests):
            location = self.locate(digest)
            if location is None:
                loose.append(digest)
            else:
                by_pack.setdefault(location.pack_id, []).append(location.entry)
        for pack_id, entries in by_pack.items():
            for start, end, group in coalesce(entries):
                try:
                    data = memoryview(self.backend.read_range(pack_key(pack_id), start, end))
                except FileNotFoundError:
                    self._gone.add(pack_id)
                    for entry in group:
                        yield entry.digest, self.read(entry.digest)
                    continue
                for entry in group:
                    at = entry.offset - start
                    yield entry.digest, decode_blob(data[at : at + entry.stored_len], entry, self.algorithm, pack_key(pack_id))
        for digest in loose:
            yield digest, super().read(digest)

    def prefetch(self, digests: Iterable[str]) -> None:
        """Read blobs into the local cache, one request per coalesced range (remote stores only)."""
        if self.backend.is_local:
            return
        todo = [d for d in dict.fromkeys(digests) if not os.path.isfile(os.path.join(self.cache_dir, "blobs", d[:2], d))]
        if not todo:
            return
        groups = self._groups(todo)
        parallel_map(lambda group: [self._keep(d, data) for d, data in self.read_many(group)], groups, self.workers)

    def _groups(self, digests: list[str]) -> list[list[str]]:
        """Split digests into batches of about one coalesced request each (for threads)."""
        by_pack: dict[str, list[PackEntry]] = {}
        other = []
        for digest in digests:
            location = self.locate(digest)
            if location is None:
                other.append([digest])
            else:
                by_pack.setdefault(location.pack_id, []).append(location.entry)
        groups = [[e.digest for e in group] for entries in by_pack.values() for _, _, group in coalesce(entries)]
        return groups + other

    def checked_sizes(self, digests: Iterable[str]) -> dict[str, int | None]:
        """Return ``{digest: size}`` of blobs that read back verified (``None`` for the others),
        reading each pack they sit in once, whole: see :meth:`check_packs` (or answered from
        what a whole check found: :meth:`remembering`)."""
        todo = list(dict.fromkeys(digests))
        checked = self._checked
        if checked is None:
            return self.check_packs(todo)[0]
        out: dict[str, int | None] = {}
        rest: list[str] = []
        raws = bytes.fromhex("".join(todo))
        for index in self.index.searched(len(todo)):  # newest first, as reads look
            if not todo:
                break
            if not index.count:  # a compacted file of no entries (gc took every pack)
                continue
            found = index.find_all(raws)
            hit = list(map(ge, found, repeat(0)))
            hits = hit.count(True)
            if not hits:
                continue
            if hits == len(found):
                here, left = todo, []
            else:  # split by column, in C: no Python step per digest
                here, found, left = list(compress(todo, hit)), list(compress(found, hit)), list(compress(todo, map(not_, hit)))
            flags = checked.get(index.name)
            if flags is None:
                rest += here
            else:
                sizes = map(index.words.__getitem__, map(add, map(mul, found, repeat(WORDS)), repeat(3)))
                verified = bytes(map(flags.__getitem__, found))
                if verified.count(1) == len(verified):
                    out.update(zip(here, sizes))  # all verified: in C
                else:
                    out.update(zip(here, [size if ok else None for size, ok in zip(sizes, verified)]))
            if left:
                raws = bytes.fromhex("".join(left))
            todo = left
        rest += todo
        if rest:
            out.update(self.check_packs(rest)[0])
        return out

    @contextmanager
    def remembering(self, checked: dict[str, bytearray]) -> Iterator[None]:
        """Answer :meth:`checked_sizes` from what :meth:`check_all` found, meanwhile."""
        self._checked = checked
        try:
            yield
        finally:
            self._checked = None

    def check_all(self) -> tuple[dict[str, bytearray], list[tuple[str, str]]]:
        """Read every pack the index lists once, whole, and check it: its name, its header, every blob
        (column by column: see :mod:`plait.storage.packcheck`).

        :returns: for each active index file (by name), and the in-memory copy of the small ones
            merged that lookups search (:meth:`PackIndex.merge_small`), a byte per entry: 1 if the
            blob there reads back verified; and ``(pack key, what is wrong)`` for each damaged or
            missing pack.
        """
        self.index.refresh()
        checked, problems = check_all(self.backend, self.algorithm, self.index.active)
        merged = self.index.merge_small()
        if merged is not None:
            copy, sources = merged
            if all(name in checked and checked[name].count(1) == len(checked[name]) for name in sources):
                checked[copy.name] = bytearray(b"\1" * copy.count)  # every entry it copies verified
            else:  # entry by entry: a pack's problem is found again, and named once
                checked[copy.name] = bytearray(copy.count)
                problems = sorted(set(problems).union(check_groups(self.backend, self.algorithm, by_pack([copy]), checked)))
        return checked, problems

    def check_packs(self, digests: Iterable[str]) -> tuple[dict[str, int | None], list[tuple[str, str]]]:
        """Read the packs holding ``digests`` whole and check them: their name, their header, those blobs.

        :returns: ``{digest: size or None}`` for the blobs asked about, and ``(pack key, what is
            wrong)`` for each damaged or missing pack.
        """
        self.index.refresh()
        sizes: dict[str, int | None] = {}
        where: dict[str, tuple[IndexFile, int]] = {}
        groups: dict[str, dict[str, tuple[IndexFile, array]]] = {}
        for digest in dict.fromkeys(digests):
            found = self.index.position(bytes.fromhex(digest), frozenset(self._gone))
            if found is None:
                sizes[digest] = self.checked_size(digest)  # written by this process and not committed, loose, or missing
                continue
            index, i = found
            where[digest] = found
            pack_id = index.pack_ids[index.words[i * WORDS]]
            group = groups.setdefault(pack_id, {}).setdefault(index.name, (index, array("I")))
            group[1].append(i)
        checked = {index.name: bytearray(index.count) for index, _ in where.values()}
        problems = check_groups(self.backend, self.algorithm, {p: list(g.values()) for p, g in groups.items()}, checked)
        for digest, (index, i) in where.items():
            sizes[digest] = index.words[i * WORDS + 3] if checked[index.name][i] else None
        return sizes, problems

    def checked_size(self, digest: str) -> int | None:
        """Return the size of the stored blob if it reads back whole and verified, else ``None``."""
        try:
            return len(self.read(digest))
        except (IntegrityError, SourceError, OSError):
            return None

    def delete(self, digest: str) -> None:
        """Delete a loose format-1 blob (packed blobs go with their pack: see gc)."""
        super().delete(digest)
        if self._loose is not None:
            self._loose.discard(digest)

    def forget(self, digests: Iterable[str]) -> None:
        """Stop trusting that these blobs are stored: their packs are looked for again.

        :param digests: blobs a gc may have taken since this process saw them.
        """
        digests = set(digests)
        super().forget(digests)
        for digest in digests:
            location = self.index.locate(digest, frozenset(self._gone))
            while location is not None and not self.backend.exists(pack_key(location.pack_id)):
                self._gone.add(location.pack_id)
                location = self.index.locate(digest, frozenset(self._gone))
        if self._loose is not None:
            self._loose.difference_update(digests)


def _digests(pack: SealedPack) -> Iterable[str]:
    """The digests of a pack's blobs (without making an entry object each, when it was written here)."""
    return pack.entries.digests if isinstance(pack.entries, Entries) else (e.digest for e in pack.entries)


def coalesce(entries: list[PackEntry]) -> Iterator[tuple[int, int, list[PackEntry]]]:
    """Yield ``(start, end, entries)`` ranges of one pack: neighbours close enough share a request."""
    group: list[PackEntry] = []
    start = end = 0
    for entry in sorted(entries, key=lambda e: e.offset):
        stop = entry.offset + entry.stored_len
        if group and (entry.offset - end > COALESCE_GAP or stop - start > MAX_RANGE):
            yield start, end, group
            group = []
        if not group:
            start = entry.offset
        group.append(entry)
        end = max(end, stop) if len(group) > 1 else stop
    if group:
        yield start, end, group
