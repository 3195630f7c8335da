"""gc of packs: drop packs no live version needs, repack those mostly dead, compact the index.

The same mark / grace / sweep as for loose blobs (see :mod:`plait.ops.gc`), over packs:

- a pack younger than the grace period is never judged (its writer may not have written its
  index file yet); a pack no index file lists (a writer died before its index) is dead once older;
- a pack holding no blob a live version needs is **dead**;
- a pack holding dead bytes is **repacked** when less than half of it is live, or when it is
  small (a re-log's tiny pack): its live blobs are copied into new packs (packs, then an index
  file, as a log writes them), after which it is dead like any other;
- dead packs are listed in a mark, with the blobs only they hold (so a writer reusing one writes
  it again: :meth:`plait.storage.packed.PackedBlobStore.protect`); a later gc deletes a marked
  pack once the mark is a grace period old **and** every blob a live version needs from it has a
  copy in a pack that stays — checked right before the delete;
- before a pack is deleted, one compacted index file replaces every index file (it lists what
  they list minus the deleted packs, and names them as superseded); superseded index files are
  deleted once the compacted one is a grace period old, so a reader that listed the index
  before never meets a missing file it needs.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import add, eq, mul

from plait.base.ids import ulid_time
from plait.errors import CorruptRecordError
from plait.ops.liveset import KEPT, LIVE, LiveSet
from plait.storage.packed import PackedBlobStore
from plait.storage.packindex import INDEX_PREFIX, WORDS, IndexFile, PackIndex, encode_merged, store_index, write_index
from plait.storage.packs import PACKS_PREFIX, SealedPack, pack_key, read_entries
from plait.store.base import BaseStore as Store
from plait.store.marks import Mark

#: A pack holding dead bytes is repacked when its live share is below this.
REPACK_BELOW = 0.5
#: More index files than this are compacted into one by the next gc.
COMPACT_ABOVE = 64
#: …or when it is smaller than this share of the target size (small packs are cheap to merge).
SMALL_PACK = 1 / 8


@dataclass
class PackPlan:
    """What gc found among the packs.

    :ivar dead: ``{pack id: size}`` of packs no live version needs (and orphans).
    :ivar repack: ``{pack id: size}`` of packs whose live blobs are to be copied out.
    :ivar young: packs left alone because they are younger than the grace period.
    :ivar positions: ``{pack id: [(index file, positions)]}``: where the index lists the entries
        of each pack not live whole (see :func:`_uneven_packs`).
    :ivar listed: every pack the index files of the live set list.
    """

    dead: dict[str, int] = field(default_factory=dict)
    repack: dict[str, int] = field(default_factory=dict)
    young: int = 0
    positions: dict[str, list[tuple[IndexFile, array]]] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)

    def entries(self, pack_id: str) -> Iterator[tuple[IndexFile, int]]:
        """Yield ``(index file, position)`` of every entry of a pack."""
        for index, positions in self.positions.get(pack_id, ()):
            for i in positions:
                yield index, i


def plan_packs(store: Store, live: LiveSet, now: float, grace: float) -> PackPlan:
    """Judge every stored pack against the live blobs, pack by pack over columns (no object per blob).

    :param live: what every live version needs, marked in the index files it was built on.
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    blobs.index.refresh()
    plan = PackPlan(positions=_uneven_packs(live), listed={p for index in live.files for p in index.pack_ids})
    listed = {p for index in blobs.index.active for p in index.pack_ids}  # a newer index file's packs are not orphans
    stored = {k.rsplit("/", 1)[-1]: size for k, size in store.backend.find(PACKS_PREFIX).items()}
    small = blobs.target * SMALL_PACK
    for pack_id, size in sorted(stored.items()):
        mtime = store.backend.modified(pack_key(pack_id)) if grace > 0 else None
        if grace > 0 and (mtime is None or mtime > now - grace):
            plan.young += 1
            continue
        refs = plan.positions.get(pack_id)
        if refs is None:
            if pack_id not in listed:  # a writer died between its packs and its index file
                plan.dead[pack_id] = size
            continue  # (or every blob in it is the copy kept of a live one: nothing to do)
        total = live_bytes = dead = 0
        for index, positions in refs:
            flags = bytes(map(live.flags[index.name].__getitem__, positions))  # these loops run in C
            lengths = list(map(index.words.__getitem__, map(add, map(mul, positions, repeat(WORDS)), repeat(2))))
            total += sum(lengths)
            kept = flags.count(LIVE | KEPT)
            live_bytes += sum(lengths) if kept == len(flags) else sum(compress(lengths, map(KEPT.__and__, flags)))
            dead += flags.count(0)
        if not live_bytes:
            plan.dead[pack_id] = size
        elif dead and (live_bytes < REPACK_BELOW * total or size < small):
            plan.repack[pack_id] = size
    return plan


#: Maps a live set's byte to 0 where the entry is the kept copy of a live blob, else to 1.
_NOT_KEPT = bytes(0 if b == LIVE | KEPT else 1 for b in range(256))
#: Above this many packs to look at, a file's entries are grouped by pack in one pass.
_GROUP_ABOVE = 8


def _uneven_packs(live: LiveSet) -> dict[str, list[tuple[IndexFile, array]]]:
    """Return the positions of the entries of every pack holding an entry that is not the kept
    copy of a live blob (by pack, in each file that lists it). A pack whose every entry is
    kept is live whole and needs no look: in a store all live, no entry is looked at one by one.
    Condemned packs are looked at whatever they hold: a sweep checks each blob in them right
    before it deletes them (:func:`still_needed`)."""
    uneven = set(live.condemned)
    for index in live.files:
        odd = live.flags[index.name].translate(_NOT_KEPT)
        if 1 in odd:
            uneven.update(index.pack_ids[n] for n in set(compress(index.words[0::WORDS], odd)))
    out: dict[str, list[tuple[IndexFile, array]]] = {}
    for index in live.files:
        numbers = [n for n, p in enumerate(index.pack_ids) if p in uneven]
        if len(numbers) > _GROUP_ABOVE:
            groups = index.by_pack()
            for n in numbers:
                out.setdefault(index.pack_ids[n], []).append((index, groups.get(n, array("I"))))
            continue
        for n in numbers:  # one pass in C per pack
            positions = array("I", compress(range(index.count), map(eq, index.words[0::WORDS], repeat(n))))
            out.setdefault(index.pack_ids[n], []).append((index, positions))
    return out


def dropped(plan: PackPlan, packs: set[str] | dict[str, int], live: LiveSet) -> dict[str, int]:
    """Return ``{digest: bytes}`` of the blobs that go with ``packs`` and no live version needs."""
    return {index.digest(i).hex(): index.words[i * WORDS + 3]
            for p in packs for index, i in plan.entries(p) if not live.live_at(index, i)}


def repack(store: Store, plan: PackPlan, live: LiveSet, leaving: set[str]) -> None:
    """Copy the live blobs of the packs to repack into new packs, then commit their index file.

    :param leaving: packs on their way out: a copy there does not count.
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    kinds: dict[str, int] = {}
    for p in plan.repack:
        for index, i in plan.entries(p):
            if live.live_at(index, i):
                kinds.setdefault(index.digest(i).hex(), index.words[i * WORDS + 4] & 0xFF)
    skip = frozenset(leaving)
    todo = [d for d in kinds if blobs.index.locate(d, skip) is None]  # no copy elsewhere yet
    for digest, data in blobs.read_many(todo):
        blobs.rewrite(digest, data, kinds[digest])
    blobs.commit()


def still_needed(store: Store, plan: PackPlan, packs: set[str], live: LiveSet) -> set[str]:
    """Return the packs of ``packs`` that hold a live blob with no copy in a pack that stays.

    Read right before a delete, after a fresh listing of the index: a writer that reused a
    blob of a marked pack wrote it again, and its copy is what lets the pack go.
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    blobs.index.refresh()
    existing = {k.rsplit("/", 1)[-1] for k in store.backend.find(PACKS_PREFIX)}
    listed = {p for index in blobs.index.active for p in index.pack_ids}
    gone = frozenset(packs) | frozenset(p for p in listed if p not in existing)
    keep = set()
    for pack_id in packs:
        for index, i in plan.entries(pack_id):
            if live.live_at(index, i) and blobs.index.position(index.digest(i), gone) is None:
                keep.add(pack_id)
                break
    return keep


def delete_packs(store: Store, packs: set[str]) -> None:
    """Write one compacted index without ``packs``, then delete them (readers never meet an
    index entry whose pack is gone, except one that listed the index before: it looks again)."""
    if not packs:
        return
    compact_index(store, drop=packs)
    store.backend.delete_many([pack_key(p) for p in sorted(packs)])


def compact_index(store: Store, drop: set[str] = frozenset()) -> str | None:  # type: ignore[assignment]
    """Write one index file replacing every index file now listed, without the packs in ``drop``
    (merged from their columns: no object per entry).

    :returns: its name, or ``None`` when there was one index file and nothing to drop.
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    index: PackIndex = blobs.index
    index.refresh()
    names = sorted(index.files)
    if len(names) < 2 and not drop:
        return None
    data = encode_merged(index.active, store.algorithm, drop, supersedes=names)
    name, data = store_index(store.backend, data, store.algorithm)
    index.add_data(name, data)
    return name


def superseded_index_files(store: Store, now: float, grace: float) -> list[str]:
    """Return index files a compacted index at least ``grace`` old supersedes (safe to delete)."""
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    index = blobs.index
    index.refresh()
    old = []
    for name, file in index.files.items():
        if file.supersedes and _born(name) <= now - grace:
            old.extend(n for n in file.supersedes if n in index.files)
    return sorted(set(old))


def delete_index_files(store: Store, names: list[str]) -> None:
    """Delete superseded index files."""
    store.backend.delete_many([f"{INDEX_PREFIX}/{n}" for n in names])
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    blobs.index.refresh()


def rebuild_index(store: Store) -> int:
    """Rebuild the pack index from the packs alone; return how many packs it lists.

    Each pack describes itself (two range reads: trailer, header). One new index file lists every
    readable pack and supersedes every index file there was, damaged ones included; those are
    deleted at once (the store's index was wrong: nothing is gained by keeping them). A pack
    whose header is damaged is left out (``verify`` names it).
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    found = []
    for key, size in sorted(store.backend.find(PACKS_PREFIX).items()):
        try:
            entries = read_entries(store.backend, key, size, store.algorithm)
        except CorruptRecordError:
            continue
        found.append(SealedPack(key.rsplit("/", 1)[-1], size, tuple(entries)))
    old = [n for n in store.backend.listdir(INDEX_PREFIX) if not n.startswith(".")]
    name, data = write_index(store.backend, found, store.algorithm, supersedes=old)
    blobs.index.add_data(name, data)
    delete_index_files(store, old)
    blobs.index.damaged.clear()
    return len(found)


def condemned_packs(marks: list[Mark]) -> set[str]:
    """Return the packs the given (ripe) marks list."""
    return set().union(*(m.packs for m in marks)) if marks else set()


def _born(name: str) -> float:
    try:
        return ulid_time(name.split("-", 1)[0]).timestamp()
    except ValueError:
        return float("inf")
