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

from dataclasses import dataclass, field

from plait.base.ids import ulid_time
from plait.errors import CorruptRecordError
from plait.storage.packed import PackedBlobStore
from plait.storage.packindex import INDEX_PREFIX, PackIndex, write_index
from plait.storage.packs import PACKS_PREFIX, PackEntry, SealedPack, pack_key, read_entries
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
    :ivar entries: ``{pack id: entries}`` the index lists.
    """

    dead: dict[str, int] = field(default_factory=dict)
    repack: dict[str, int] = field(default_factory=dict)
    young: int = 0
    entries: dict[str, list[PackEntry]] = field(default_factory=dict)


def plan_packs(store: Store, live: set[str], now: float, grace: float, condemned: set[str] = frozenset()) -> PackPlan:  # type: ignore[assignment]
    """Judge every stored pack against the live blobs.

    :param live: digests every live version needs.
    :param condemned: packs a ripe mark lists: a live blob stored there and elsewhere counts elsewhere.
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    blobs.index.refresh()
    plan = PackPlan(entries=blobs.index.packs())
    stored = {k.rsplit("/", 1)[-1]: size for k, size in store.backend.find(PACKS_PREFIX).items()}
    owner: dict[str, str] = {}  # a live blob stored twice counts live in one pack only
    for pack_id in sorted(stored, key=lambda p: (p in condemned, p)):
        for entry in plan.entries.get(pack_id, ()):
            if entry.digest in live:
                owner.setdefault(entry.digest, pack_id)
    small = blobs.target * SMALL_PACK
    for pack_id, size in sorted(stored.items()):
        mtime = store.backend.modified(pack_key(pack_id)) if grace > 0 else None
        if grace > 0 and (mtime is None or mtime > now - grace):
            plan.young += 1
            continue
        entries = plan.entries.get(pack_id)
        if entries is None:  # a writer died between its packs and its index file
            plan.dead[pack_id] = size
            continue
        live_bytes = sum(e.stored_len for e in entries if owner.get(e.digest) == pack_id)
        dead = [e for e in entries if e.digest not in live]
        if not live_bytes:
            plan.dead[pack_id] = size
        elif dead and (live_bytes < REPACK_BELOW * sum(e.stored_len for e in entries) or size < small):
            plan.repack[pack_id] = size
        else:
            continue
    return plan


def dropped(plan: PackPlan, packs: set[str] | dict[str, int], live: set[str]) -> dict[str, int]:
    """Return ``{digest: bytes}`` of the blobs that go with ``packs`` and no live version needs."""
    return {e.digest: e.raw_len for p in packs for e in plan.entries.get(p, ()) if e.digest not in live}


def repack(store: Store, plan: PackPlan, live: set[str], leaving: set[str]) -> None:
    """Copy the live blobs of the packs to repack into new packs, then commit their index file.

    :param leaving: packs on their way out: a copy there does not count.
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    kinds = {e.digest: e.kind for p in plan.repack for e in plan.entries[p]}
    wanted = [e.digest for p in plan.repack for e in plan.entries[p] if e.digest in live]
    skip = frozenset(leaving)
    todo = [d for d in dict.fromkeys(wanted) if blobs.index.locate(d, skip) is None]  # no copy elsewhere yet
    for digest, data in blobs.read_many(todo):
        blobs.rewrite(digest, data, kinds[digest])
    blobs.commit()


def still_needed(store: Store, packs: set[str], live: set[str]) -> set[str]:
    """Return the packs of ``packs`` that hold a live blob with no copy in a pack that stays.

    Read right before a delete, after a fresh listing of the index: a writer that reused a
    blob of a marked pack wrote it again, and its copy is what lets the pack go.
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    blobs.index.refresh()
    entries = blobs.index.packs()
    existing = {k.rsplit("/", 1)[-1] for k in store.backend.find(PACKS_PREFIX)}
    gone = frozenset(packs) | frozenset(p for p in entries if p not in existing)
    keep = set()
    for pack_id in packs:
        for entry in entries.get(pack_id, ()):
            if entry.digest in live and blobs.index.locate(entry.digest, gone) is None:
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
    """Write one index file replacing every index file now listed, without the packs in ``drop``.

    :returns: its name, or ``None`` when there was one index file and nothing to drop.
    """
    blobs = store.blobs
    assert isinstance(blobs, PackedBlobStore)
    index: PackIndex = blobs.index
    index.refresh()
    names = sorted(index.files)
    if len(names) < 2 and not drop:
        return None
    packs = [SealedPack(p, 0, tuple(e)) for p, e in sorted(index.packs().items()) if p not in drop]
    name, data = write_index(store.backend, packs, store.algorithm, supersedes=names)
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
