"""gc's live set as positions in the pack index: what it marks, which copy it keeps, and that
its memory does not grow by a Python string per blob."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import plait
from plait.formats.tree import decode_node
from plait.ops.liveset import KEPT, LIVE, LiveSet
from plait.store.shared import shared


def _tree(root: Path, folders: int, files: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    for d in range(folders):
        for f in range(files):
            path = root / f"d{d}" / f"f{f}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rng.randbytes(40))
    return root


def _reopen(store) -> plait.Store:
    shared(store.url).pop(f"plait.pack-index:{store.algorithm}")
    return plait.Store(store.url)


def test_gc_keeps_a_blob_that_only_a_reused_folder_names(file_store, tmp_path):
    data = _tree(tmp_path / "data", folders=3, files=5)
    v0 = file_store.log(str(data), name="ds")
    kept = v0.entry("d1/f2.bin").digest
    (data / "d0" / "f0.bin").write_bytes(b"v1 changes d0 only")
    v1 = file_store.log(str(data), name="ds")
    assert v1.manifest.root.digests[1] == v0.manifest.root.digests[1]  # d1's node is v0's, reused
    gone = v0.entry("d0/f0.bin").digest
    file_store.delete("ds:v0")
    report = file_store.gc(dry_run=False, grace_seconds=0)
    assert gone in report.blobs and kept not in report.blobs
    fresh = _reopen(file_store)
    assert fresh.get("ds:v1").read_bytes("d1/f2.bin") == (data / "d1" / "f2.bin").read_bytes()
    assert fresh.verify().ok


def test_every_copy_of_a_live_blob_is_live_and_one_is_kept_outside_condemned_packs(file_store, tmp_path):
    data = _tree(tmp_path / "data", folders=1, files=4)
    v = file_store.log(str(data), name="ds")
    digest = v.entry("d0/f1.bin").digest
    first = file_store.blobs.locate(digest).pack_id
    file_store.blobs.rewrite(digest, file_store.blobs.read(digest), 0)  # a second copy, in a pack of its own
    file_store.blobs.commit()
    store = _reopen(file_store)
    store.blobs.index.refresh()
    (copy,) = [loc.pack_id for loc in store.blobs.index.locate_all(digest) if loc.pack_id != first]

    def flags_of(live: LiveSet) -> dict[str, int]:
        out = {}
        for index in live.files:
            i = index.find(bytes.fromhex(digest))
            if i >= 0:
                out[index.pack_ids[index.words[i * 5]]] = live.flags[index.name][i]
        return out

    for condemned, keeper in ((set(), copy), ({copy}, first)):
        live = LiveSet(store.blobs.index.active, condemned)
        live.add_tree(v.digest, store.node)
        live.finish()
        assert flags_of(live) == {keeper: LIVE | KEPT, ({first, copy} - {keeper}).pop(): LIVE}
        assert digest in live and not live.loose
    report = store.gc(dry_run=True, grace_seconds=0)
    assert digest not in report.blobs  # a live blob is never listed as freed, whichever copy goes


def test_a_loose_store_keeps_its_live_set_as_digests(tmp_path):
    store = plait.Store(str(tmp_path / "old"), format=1)
    v = store.log(b"format one bytes", name="old")
    live = LiveSet()
    for blob in v.manifest.blobs():
        assert live.add(blob) and not live.add(blob)
    assert live.loose == set(v.manifest.blobs()) and v.entry("old").digest in live
    assert store.gc(dry_run=True, grace_seconds=0).blobs == []


def test_the_live_set_of_gc_takes_a_few_bytes_per_blob_not_a_string_each(file_store, tmp_path):
    data = _tree(tmp_path / "data", folders=40, files=100)  # 4,000 files
    v = file_store.log(str(data), name="ds")
    store = _reopen(file_store)
    store.blobs.index.refresh()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        live = LiveSet(store.blobs.index.active)
        live.add_tree(v.digest, lambda digest: decode_node(store.blobs.read(digest), digest))  # no node cache
        live.finish()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    blobs = 4000 + 41
    assert sum(flags.count(LIVE | KEPT) for flags in live.flags.values()) == blobs
    # a set of hex digests held about 150 bytes a blob; a byte a blob and an 8-byte prefix column
    # (made once per index file) stay far below
    assert held / blobs < 20, held


def test_packs_live_whole_are_judged_without_a_look_at_their_entries_but_a_condemned_one_is_looked_at(file_store, tmp_path):
    from plait.ops.packgc import plan_packs

    data = _tree(tmp_path / "data", folders=4, files=10)
    v = file_store.log(str(data), name="ds")
    orphan = file_store.blobs.put_bytes(b"no version names this")
    file_store.blobs.commit()
    store = _reopen(file_store)
    store.blobs.index.refresh()
    lone = store.blobs.locate(orphan).pack_id
    packs = {p for index in store.blobs.index.active for p in index.pack_ids}
    live = LiveSet(store.blobs.index.active)
    live.add_tree(v.digest, store.node)
    live.finish()
    plan = plan_packs(store, live, now=0.0, grace=0.0)
    assert set(plan.positions) == {lone} and plan.dead == {lone: plan.dead[lone]} and plan.listed == packs
    data_pack = store.blobs.locate(v.entry("d0/f0.bin").digest).pack_id
    condemned = LiveSet(store.blobs.index.active, {data_pack})  # only copy of its blobs: kept there, yet looked at
    condemned.add_tree(v.digest, store.node)
    condemned.finish()
    assert set(plan_packs(store, condemned, now=0.0, grace=0.0).positions) == {lone, data_pack}
