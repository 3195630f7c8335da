"""A store logged to many times: every log adds an index file, and a lookup still makes one search.

A lookup that misses looks in every index file, so a store logged to five hundred times made
each lookup five hundred searches (a 20,000-file log took 7 × as long as into an empty store).
Lookups now search the small index files through one copy of them merged in memory, made once a
process has looked up enough blobs to pay for it. Verify and gc still see every file as written.
"""

from __future__ import annotations

import pytest
from tests.blobview import Blobs

import plait
from plait.storage import packindex
from plait.storage.digest import hash_bytes
from plait.storage.packs import KIND_DATA, PackWriter, decode_blob, pack_key


def _fresh(store: plait.Store) -> plait.Store:
    """Open the store again (in this process it shares its pack index with ``store``)."""
    return plait.Store(store.url, storage_options=store.storage_options or None)


def _reader(store: plait.Store) -> packindex.PackIndex:
    """The pack index a new process reads: it knows only what is stored, and has looked nothing up."""
    return packindex.PackIndex(store.backend, store.algorithm, store.blobs.index.cache_dir)


def _read(store: plait.Store, location: packindex.Location) -> bytes:
    entry = location.entry
    stored = store.backend.read_range(pack_key(location.pack_id), entry.offset, entry.offset + entry.stored_len)
    return decode_blob(stored, entry, store.algorithm, location.pack_id)


def _log_many(store: plait.Store, n: int, start: int = 0) -> dict[str, bytes]:
    """Log ``n`` small versions, one index file each; return ``{digest: bytes}`` of what they hold."""
    out = {}
    for i in range(start, start + n):
        data = f"small log number {i}".encode()
        store.log(data, name=f"run{i % 3}")
        out[hash_bytes(data, store.algorithm)] = data
    return out


def _merged(files) -> list[str]:
    return [f.name for f in files if f.name.startswith(packindex.MERGED_NAME)]


def test_lookups_search_the_small_index_files_as_one_once_that_pays(any_store):
    logged = _log_many(any_store, packindex.SMALL_FILES_ABOVE + 4)
    index = _reader(any_store)
    assert len(index.active) >= packindex.SMALL_FILES_ABOVE + 4
    assert index.searched() == index.active  # a few lookups (show, a small get) never pay for a merge

    searched = index.searched(packindex.MERGE_AFTER)
    assert len(_merged(searched)) == 1 and len(searched) == 1  # every file is small: one search
    for digest, data in logged.items():
        assert digest in index
        location = index.locate(digest)
        assert _read(any_store, location) == data
        assert [loc.pack_id for loc in index.locate_all(digest)] == [location.pack_id]
        assert index.position(bytes.fromhex(digest)) is not None
    assert hash_bytes(b"never logged", any_store.algorithm) not in index

    newer = _log_many(any_store, 2, start=100)  # files added since are searched apart, before the merged copy
    index.refresh()
    searched = index.searched()
    assert len(searched) == 3 and _merged(searched[-1:])
    assert all(_read(any_store, index.locate(d)) == data for d, data in {**logged, **newer}.items())

    more = _log_many(any_store, packindex.SMALL_FILES_ABOVE - 1, start=200)  # 9 since: merged again, all of them
    index.refresh()
    searched = index.searched()
    assert len(searched) == 1 and _merged(searched)
    assert all(d in index for d in {**logged, **newer, **more})
    index.reload()  # verify trusts nothing read before: the copy is made again from the files read again
    assert _merged(index.searched()) and _merged(index.searched()) != _merged(searched)


def test_a_store_logged_to_many_times_verifies_and_names_a_damaged_blob_behind_the_merged_copy(store, monkeypatch):
    logged = _log_many(store, packindex.SMALL_FILES_ABOVE + 8)
    assert _fresh(store).verify().ok
    damaged = sorted(logged)[3]
    Blobs.flip(store, damaged)

    copies = []  # what verify checked and searched besides the index files
    merge_small = packindex.PackIndex.merge_small
    monkeypatch.setattr(packindex.PackIndex, "merge_small", lambda self: copies.append(merge_small(self)) or copies[-1])
    merged = _fresh(store).verify()
    assert copies and copies[-1] is not None and len(copies[-1][1]) > packindex.SMALL_FILES_ABOVE
    monkeypatch.setattr(packindex, "SMALL_FILES_ABOVE", 10**6)  # as before: every file searched apart
    apart = _fresh(store).verify()
    assert copies[-1] is None
    assert not merged.ok and merged.problems == apart.problems
    assert {digest for _, _, digest, _ in merged.problems if digest} == {damaged}
    assert merged.blobs == apart.blobs == len(logged)


def test_a_lookup_skips_a_pack_found_gone_and_takes_another_copy_behind_the_merged_copy(store):
    _log_many(store, packindex.SMALL_FILES_ABOVE + 2)
    data = b"stored twice, by two writers that did not see each other"
    digest = hash_bytes(data, store.algorithm)
    store.log(data, name="twice")
    sealed = []  # what a second process that looked before the first's log stores: its own pack and index file
    writer = PackWriter(store.backend, store.algorithm, KIND_DATA, 1 << 20, sealed.append)
    writer.add(digest, data)
    writer.seal()
    packindex.write_index(store.backend, sealed, store.algorithm)

    index = _reader(store)
    index.searched(packindex.MERGE_AFTER)
    assert _merged(index.searched())
    copies = {loc.pack_id for loc in index.locate_all(digest)}
    assert len(copies) == 2
    taken = index.locate(digest).pack_id
    assert index.locate(digest, frozenset({taken})).pack_id == (copies - {taken}).pop()  # a gc took the first
    assert index.position(bytes.fromhex(digest), frozenset(copies)) is None


@pytest.mark.parametrize("lookups", [1, packindex.MERGE_AFTER])
def test_a_gc_compaction_of_the_index_files_is_searched_instead_of_the_merged_copy(store, lookups, monkeypatch):
    logged = _log_many(store, packindex.SMALL_FILES_ABOVE + 4)
    reader = _reader(store)
    reader.searched(lookups)
    monkeypatch.setattr("plait.ops.gc.COMPACT_ABOVE", 1)
    store.gc(dry_run=False, grace_seconds=0)  # nothing is garbage: the index files are compacted into one
    reader.refresh()
    searched = reader.searched()
    assert len(searched) == 1 and not _merged(searched)
    assert all(_read(store, reader.locate(d)) == data for d, data in logged.items())


def test_the_merged_copy_holds_the_newest_small_files_up_to_its_limit_and_stays_while_few_come(store, monkeypatch):
    logged = _log_many(store, 20)
    index = _reader(store)
    sizes = [f.count for f in index.active]
    monkeypatch.setattr(packindex, "MERGED_AT_MOST", sum(sizes[:12]))  # room for the newest 12
    searched = index.searched(packindex.MERGE_AFTER)
    assert _merged(searched[-1:]) and searched[:-1] == index.active[12:]  # the 8 oldest apart, newest first
    copy = searched[-1]
    assert copy.count == sum(sizes[:12])

    newer = _log_many(store, 3, start=100)
    index.refresh()
    searched = index.searched()
    assert searched[-1] is copy and len(searched) == 3 + 8 + 1  # a few new files do not make a new copy
    assert all(_read(store, index.locate(d)) == data for d, data in {**logged, **newer}.items())
