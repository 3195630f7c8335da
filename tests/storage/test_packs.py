"""Packs and pack index files: the format, the reader and writer, and what a format-2 store holds."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from blobview import Blobs
from click.testing import CliRunner

import plait
from plait.cli import main
from plait.errors import CorruptRecordError, IntegrityError
from plait.storage import packindex
from plait.storage.digest import hash_bytes
from plait.storage.packindex import IndexFile, encode_index
from plait.storage.packs import (
    KIND_DATA,
    KIND_TREE,
    TRAILER,
    Entries,
    PackEntry,
    PackWriter,
    SealedPack,
    decode_blob,
    encode_header,
    pack_key,
    read_entries,
    split_pack,
)
from plait.store.shared import shared


def _writer(store, kind=KIND_DATA, target=1 << 20) -> tuple[PackWriter, list[SealedPack]]:
    sealed: list[SealedPack] = []
    return PackWriter(store.backend, store.algorithm, kind, target, sealed.append), sealed


def test_a_pack_describes_itself_and_is_named_by_its_bytes(store):
    writer, sealed = _writer(store.init())
    blobs = [os.urandom(n) for n in (1, 100, 5000)]
    for data in blobs:
        writer.add(hash_bytes(data), data)
    pack = writer.seal()
    assert sealed == [pack] and writer.seal() is None  # nothing left open
    raw = store.backend.read(pack_key(pack.pack_id))
    assert hash_bytes(raw) == pack.pack_id and len(raw) == pack.size
    entries = split_pack(raw, store.algorithm, "p")
    assert entries == list(pack.entries) == read_entries(store.backend, pack_key(pack.pack_id), len(raw), store.algorithm)
    for entry, data in zip(entries, blobs):
        assert decode_blob(raw[entry.offset : entry.offset + entry.stored_len], entry, store.algorithm, "p") == data


def test_tree_packs_compress_and_the_same_blobs_twice_make_two_packs(file_store):
    node = b"names compress well " * 200
    names = set()
    for _ in range(2):
        writer, _ = _writer(file_store.init(), KIND_TREE)
        writer.add(hash_bytes(node), node)
        pack = writer.seal()
        assert pack.entries[0].stored_len < len(node) // 10
        names.add(pack.pack_id)
    # a fresh name each time (the nonce): a copy of a condemned pack's blobs is never that pack
    assert len(names) == 2 and len(file_store.backend.find("packs")) == 2
    assert file_store.backend.stale_temporaries("packs", float("inf")) == {}


def test_a_pack_is_sealed_at_the_target_size(file_store):
    writer, sealed = _writer(file_store.init(), target=10_000)
    for i in range(30):
        data = f"{i}".encode() * 1000
        writer.add(hash_bytes(data), data)
    writer.seal()
    assert len(sealed) >= 3 and all(p.size < 10_000 + 4_000 for p in sealed)
    assert sum(len(p.entries) for p in sealed) == 30


def test_a_pack_sent_to_an_object_store_holds_its_bytes_until_sent_and_gives_the_memory_back(any_store, monkeypatch):
    from plait.storage import packs

    packs.release_freed_memory()  # glibc's malloc_trim here; nothing where there is none
    released = []
    monkeypatch.setattr(packs, "release_freed_memory", lambda: released.append(1))
    writer, sealed = _writer(any_store.init(), target=10_000)
    blobs = {}
    for i in range(30):
        data = f"{i}".encode() * 1000
        blobs[hash_bytes(data)] = data
        writer.add(hash_bytes(data), data)
    writer.seal()

    assert writer._parts == []  # nothing of a sent pack is kept
    assert len(released) == (0 if any_store.backend.is_local else len(sealed))  # once a pack is sent
    for pack in sealed:
        stored = any_store.backend.read(pack_key(pack.pack_id))
        assert hash_bytes(stored) == pack.pack_id
        assert {e.digest: decode_blob(stored[e.offset : e.offset + e.stored_len], e, "xxh3-128", "pack") for e in pack.entries} == {
            e.digest: blobs[e.digest] for e in pack.entries}


#: The ways an index file looks a digest up: one at a time in a small file (``bytes.find`` in the
#: first-byte bucket), one at a time in a large file (bisected; after a batch made its two-byte
#: buckets; switching to those after many lookups), and in batches (through the buckets, or
#: bisected when small).
LOOKUPS = {"small file": 0, "large file, bisected": 10**9, "large file, two-byte buckets": 0,
           "large file, many lookups": 100, "batch": 0, "small batch": 10**9}


@pytest.mark.parametrize("way", LOOKUPS)
def test_an_index_file_finds_every_blob_and_no_other(store, monkeypatch, way):
    if way != "small file":
        monkeypatch.setattr(packindex, "FANOUT2_ABOVE", 0)  # 901 entries count as a large file
    monkeypatch.setattr(packindex, "BISECT_BELOW", LOOKUPS[way])
    rng = random.Random(3)
    packs = []
    for p in range(3):
        entries, offset = [], 0
        for _ in range(300):
            data = rng.randbytes(rng.randrange(1, 50))
            entries.append(_entry(data, offset))
            offset += len(data)
        packs.append(SealedPack(hash_bytes(str(p).encode()), offset, tuple(entries)))
    dup = packs[0].entries[0]
    packs.append(SealedPack(hash_bytes(b"dup"), dup.stored_len, (PackEntry(dup.digest, 0, 0, 0, dup.stored_len, dup.raw_len),)))
    data = encode_index(packs, store.algorithm, supersedes=["older-1", "older-2"])
    index = IndexFile("i", data, store.algorithm)
    assert index.supersedes == ["older-1", "older-2"] and index.count == 901
    if way == "large file, two-byte buckets":
        index.find_all(bytes(16))  # a batch makes them
    wanted = [(pack.pack_id, entry) for pack in packs[:3] for entry in pack.entries[1:]]
    absent = [hash_bytes(f"absent {i}".encode()) for i in range(200)]
    digests = [entry.digest for _, entry in wanted] + absent + [dup.digest]
    if way in ("batch", "small batch"):
        found = index.find_all(bytes.fromhex("".join(digests)))
    else:
        found = [index.find(bytes.fromhex(d)) for d in digests]
    assert [index.entry(i) for i in found[: len(wanted)]] == wanted
    assert found[len(wanted) : -1] == [-1] * len(absent)
    first = found[-1]
    assert {index.entry(first)[0], index.entry(first + 1)[0]} == {packs[0].pack_id, packs[3].pack_id}  # side by side
    assert index.digest(first - 1) != index.digest(first)  # and the first of the two is found


@pytest.mark.parametrize("damage", ["flip", "truncate", "trailer"])
def test_a_damaged_index_file_is_refused_whole(store, damage):
    entry_pack = SealedPack(hash_bytes(b"p"), 3, ())
    data = bytearray(encode_index([entry_pack], store.algorithm))
    if damage == "flip":
        data[10] ^= 1
    elif damage == "truncate":
        data = data[:-5]
    else:
        data[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="rebuild"):
        IndexFile("i", bytes(data), store.algorithm)


def test_a_pack_header_lying_about_its_blobs_is_refused(store):
    store.init()
    data = b"abc"
    bad = encode_header([_entry(data, 0, stored=99)], store.algorithm)
    with pytest.raises(CorruptRecordError, match="lists 99 bytes"):
        split_pack(data + bad, store.algorithm, "packs/x")
    with pytest.raises(CorruptRecordError, match="too short|not a plait pack"):
        split_pack(b"xy", store.algorithm, "packs/x")
    with pytest.raises(CorruptRecordError, match="header would be longer"):
        split_pack(b"a" + TRAILER.pack(1 << 30, 1, b"PLPK"), store.algorithm, "packs/x")


def test_an_index_file_lists_a_pack_the_same_from_its_columns_as_from_entry_objects(store):
    rng = random.Random(4)
    packs, objects = [], []
    for p, kind in enumerate((KIND_DATA, KIND_TREE, KIND_DATA)):
        columns = Entries(kind, 1 if kind == KIND_TREE else 0)
        for i in range(500):
            digest = rng.choice(columns.digests) if i and i % 97 == 0 else rng.randbytes(16).hex()  # a few twice
            size = rng.randrange(0, 3000)
            columns.append(digest, size, size + (7 if kind == KIND_TREE else 0))
        packs.append(SealedPack(hash_bytes(str(p).encode()), 0, columns))
        objects.append(SealedPack(hash_bytes(str(p).encode()), 0, tuple(columns)))  # offsets from the lengths
    assert encode_index(packs, store.algorithm) == encode_index(objects, store.algorithm)
    index = IndexFile("i", encode_index(packs, store.algorithm), store.algorithm)
    assert sorted((p, e.digest, e.offset) for p, e in index) == sorted((s.pack_id, e.digest, e.offset) for s in objects
                                                                       for e in s.entries)
    assert all(index.entry(i)[1].offset <= index.entry(i + 1)[1].offset for i in range(index.count - 1)
               if index.digest(i) == index.digest(i + 1))  # copies in one pack, in its order


def _entry(data: bytes, offset: int, stored: int | None = None) -> PackEntry:
    return PackEntry(hash_bytes(data), KIND_DATA, 0, offset, len(data) if stored is None else stored, len(data) if stored is None else stored)


# -- a format-2 store ------------------------------------------------------------------------


def _folder(make_files, n: int = 300, seed: int = 1, folder: str = "data") -> Path:
    rng = random.Random(seed)
    return make_files({f"d{i % 7}/f{i:04d}.bin": rng.randbytes(rng.randrange(0, 3000)) for i in range(n)}, folder=folder)


def test_many_small_files_become_a_few_objects(any_store, make_files):
    folder = _folder(make_files)
    any_store.log(str(folder), name="small")
    keys = any_store.backend.find("")
    # one pack of file contents, one of tree nodes, one index file listing both
    assert len([k for k in keys if k.startswith("packs/")]) == 2 and len([k for k in keys if k.startswith("index/")]) == 1
    assert not [k for k in keys if k.startswith(("blobs/", "manifests/"))]
    out = plait.Store(any_store.url, storage_options=any_store.storage_options).get("small").download(str(folder.parent / "out"))
    for path in folder.rglob("*"):
        if path.is_file():
            assert (Path(out) / path.relative_to(folder)).read_bytes() == path.read_bytes()
    assert plait.Store(any_store.url, storage_options=any_store.storage_options).verify().ok


def test_a_relog_with_one_changed_file_stores_only_that_file(file_store, make_files):
    folder = _folder(make_files)
    file_store.log(str(folder), name="small")
    before = file_store.backend.find("packs")
    (folder / "d0" / "f0000.bin").write_bytes(b"changed!")
    file_store.log(str(folder), name="small")
    new = {k: n for k, n in file_store.backend.find("packs").items() if k not in before}
    # two small packs: the changed file, and the nodes on its path (its folder's, the root)
    assert len(new) == 2 and min(new.values()) < 200 and sum(new.values()) < 4096


def test_large_files_are_chunked_into_packs_and_deduplicated(file_store, make_files):
    rng = random.Random(5)
    big = rng.randbytes(20 << 20)
    folder = make_files({"big.bin": big})
    file_store.log(str(folder), name="big")
    first = sum(file_store.backend.find("packs").values())
    (folder / "big.bin").write_bytes(big + b"tail")
    file_store.log(str(folder), name="big")
    added = sum(file_store.backend.find("packs").values()) - first
    assert added < 5 << 20  # the unchanged chunks are found in the first packs
    assert file_store.get("big:v1").read_bytes("big.bin") == big + b"tail"
    assert not file_store.backend.find("blobs")


def test_a_format_1_store_stays_format_1(file_store, make_files):
    file_store.requested_format = 1
    folder = _folder(make_files, 20)
    file_store.log(str(folder), name="old")
    reopened = plait.Store(file_store.url)
    assert reopened.format == 1 and reopened.config["format"] == 1
    reopened.log(str(folder / "d1"), name="old2")
    keys = reopened.backend.find("")
    assert not [k for k in keys if k.startswith(("packs/", "index/"))] and [k for k in keys if k.startswith("blobs/")]
    assert reopened.verify().ok


def test_a_newer_store_format_is_refused_in_one_line(file_store):
    file_store.init()
    Path(file_store.url, "plait.json").write_text(f'{{"format": 3, "algorithm": "xxh3-128", "id": "{file_store.id}"}}')
    with pytest.raises(plait.errors.StoreError, match="format 3 store; this plait reads formats 1 and 2: upgrade plait"):
        _ = plait.Store(file_store.url).catalog


# -- hostile packs and index files --------------------------------------------------------------


def _reopen(store) -> plait.Store:
    """Open the store as a new process would: no index files read yet (the test rewrote one)."""
    shared(store.url).pop(f"plait.pack-index:{store.algorithm}")
    return plait.Store(store.url)


def _one_pack(store) -> str:
    """Return the key of the store's one pack of file contents (its tree nodes have their own)."""
    store.blobs.index.refresh()
    (pack_id,) = [p for p, entries in store.blobs.index.packs().items() if entries[0].kind == KIND_DATA]
    return pack_key(pack_id)


def test_a_damaged_blob_in_a_pack_is_named_with_every_version_and_a_download_refuses_it(file_store, make_files, tmp_path):
    folder = make_files({"a.txt": b"alpha" * 100, "b.txt": b"beta" * 100})
    file_store.log(str(folder), name="one")
    file_store.log(str(folder / "a.txt"), name="two")
    key = _one_pack(file_store)
    digest = file_store.get("one").entry("a.txt").digest
    location = file_store.blobs.locate(digest)
    path = file_store.backend.local_path(key)
    raw = bytearray(Path(path).read_bytes())
    raw[location.entry.offset + 3] ^= 1
    Path(path).write_bytes(bytes(raw))
    fresh = _reopen(file_store)
    report = fresh.verify()
    assert ("packs", key, "", "the pack's bytes do not hash to its name: it is damaged") in report.problems
    named = {(spec, p) for spec, p, d, _ in report.problems if d == digest}
    assert named == {("one:v0", "a.txt"), ("two:v0", "a.txt")}
    with pytest.raises(IntegrityError, match="a.txt"):
        fresh.get("one").download(str(tmp_path / "out"))
    assert not list((tmp_path / "out").rglob("*"))  # nothing left behind
    assert fresh.get("one").read_bytes("b.txt") == b"beta" * 100  # the rest of the pack still reads


def test_a_truncated_pack_is_refused(file_store, make_files, tmp_path):
    folder = make_files({"a.txt": b"alpha" * 100, "b.txt": b"beta" * 100})
    file_store.log(str(folder), name="one")
    key = _one_pack(file_store)
    path = file_store.backend.local_path(key)
    Path(path).write_bytes(Path(path).read_bytes()[:300])
    fresh = _reopen(file_store)
    report = fresh.verify()
    assert [p for p in report.problems if p[0] == "packs" and p[1] == key]
    assert {p for _, p, d, _ in report.problems if d} == {"a.txt", "b.txt"}
    with pytest.raises(IntegrityError):
        fresh.get("one").download(str(tmp_path / "out"))
    assert not list((tmp_path / "out").rglob("*"))


def test_an_index_file_pointing_outside_its_pack_is_refused(file_store, make_files, tmp_path):
    folder = make_files({"a.txt": b"alpha" * 100})
    file_store.log(str(folder), name="one")
    digest = file_store.get("one").entry("a.txt").digest
    (index_key,) = file_store.backend.find("index")
    file_store.blobs.index.refresh()
    packs = file_store.blobs.index.packs()  # the tree's pack listed as it is, a.txt far outside its own
    lying = encode_index([SealedPack(p, 0, tuple(PackEntry(digest, KIND_DATA, 0, 1 << 30, 500, 500) if e.digest == digest else e
                                                 for e in entries)) for p, entries in packs.items()], file_store.algorithm)
    file_store.backend.delete(index_key)
    file_store.backend.write("index/01M8X8892BKV4HND5W99X5V4DV-00000000", lying)
    fresh = _reopen(file_store)
    with pytest.raises(IntegrityError, match="cut short"):
        fresh.get("one").read_bytes("a.txt")
    report = fresh.verify()
    assert any(d == digest for _, _, d, _ in report.problems)


def test_a_damaged_index_file_is_reported_and_rebuilt_from_the_packs(file_store, make_files):
    folder = make_files({"a.txt": b"alpha" * 100, "b.txt": b"beta"})
    file_store.log(str(folder), name="one")
    (index_key,) = file_store.backend.find("index")
    path = Path(file_store.backend.local_path(index_key))
    path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1]))
    fresh = _reopen(file_store)
    report = fresh.verify()
    assert ("index", index_key) in {(p[0], p[1]) for p in report.problems}
    root = file_store.get("one").digest
    assert {(p[0], p[1], p[2]) for p in report.problems if p[2]} == {("one:v0", "", root)}  # not even its tree is found
    result = CliRunner().invoke(main, ["--store", file_store.url, "verify", "--rebuild-index"])
    assert result.exit_code == 0, result.output
    assert index_key not in plait.Store(file_store.url).backend.find("index")  # superseded, then removed
    again = plait.Store(file_store.url)
    assert again.verify().ok and again.get("one").read_bytes("a.txt") == b"alpha" * 100


def test_on_s3_a_log_of_2000_small_files_takes_a_handful_of_requests_and_a_relog_of_one_change_as_few(
        s3_store, s3_requests, make_files):
    rng = random.Random(7)
    folder = make_files({f"d{i % 20}/f{i:04d}.bin": rng.randbytes(4096) for i in range(2000)}, folder="data")
    s3_store.log(str(folder), name="small")
    first = s3_requests()
    (folder / "d3" / "f0003.bin").write_bytes(b"changed")
    before = s3_requests().get("PUT", 0)
    again = s3_store.log(str(folder), name="small")
    puts = s3_requests().get("PUT", 0) - before
    # one pack, its index file, the manifest, the version record, the events: not one PUT per file
    assert first["PUT"] <= 12, first
    # nor a read per file: the first log into an empty bucket once asked for plait.json per file hashed
    assert sum(first.values()) <= 60, first
    assert puts <= 10, puts
    fresh = plait.Store(s3_store.url, storage_options=s3_store.storage_options)
    assert fresh.get("small:v1").read_bytes("d3/f0003.bin") == b"changed" and again.number == 1
    assert fresh.verify().ok


def test_migrate_packs_a_format_1_store_in_place_keeps_every_version_and_runs_again_harmlessly(file_store, make_files, tmp_path):
    import json

    file_store.requested_format = 1
    folder = _folder(make_files, 200)
    old = file_store.log(str(folder), name="old")
    loose = {k for k in file_store.backend.find("blobs")}
    victim = sorted(loose)[0].rsplit("/", 1)[-1]
    Path(file_store.backend.local_path(f"blobs/{victim[:2]}/{victim}")).write_bytes(b"damaged")  # left loose, named
    runner = CliRunner()
    out = runner.invoke(main, ["--store", file_store.url, "migrate"])
    assert out.exit_code == 0, out.output
    assert f"DAMAGED blob {victim}" in out.output and f"format 1 -> 2: {len(loose) - 1} blobs" in out.output
    config = json.loads(Path(file_store.url, "plait.json").read_text())
    assert config["format"] == 2 and config["migrated_from"] == 1 and config["id"] == file_store.id
    store = plait.Store(file_store.url)
    assert store.get("old:v0").digest == old.digest  # versions keep their digests
    assert store.verify().problems and [p[3] for p in store.verify().problems if p[2] == victim]
    Path(file_store.backend.local_path(f"blobs/{victim[:2]}/{victim}")).unlink()  # the damaged one goes: v0 needs it
    # an interrupted run (plait.json not yet rewritten) copies nothing again
    Path(file_store.url, "plait.json").write_text(json.dumps({**config, "format": 1}))
    del config["migrated_from"]
    again = plait.Store(file_store.url).migrate()
    assert again.from_format == 1 and again.blobs == 0 and again.already == len(loose) - 1
    store = plait.Store(file_store.url)
    (folder / "d1" / "new.bin").write_bytes(b"after the migration")
    new = store.log(str(folder), name="old")
    assert store.format == 2 and [k for k in store.backend.find("packs")]
    # gc drops the loose copies a pack also holds; every version reads from packs
    done = store.gc(dry_run=False, grace_seconds=0)
    assert len(done.blobs) == len(loose) - 1 and store.backend.find("blobs") == {}
    fresh = plait.Store(file_store.url)
    assert fresh.get("old:v1").read_bytes("d1/new.bin") == b"after the migration" and new.number == 1
    v0 = fresh.get("old:v0")
    ok = [e.path for e in v0.files() if e.digest != victim]
    assert all(v0.read_bytes(p) == (folder / p).read_bytes() for p in ok[:50])
    assert plait.Store(file_store.url).migrate().blobs == 0
    assert "nothing to migrate" in runner.invoke(main, ["--store", plait.Store(str(tmp_path / "new")).init().url, "migrate"]).output


def test_an_empty_file_beside_others_in_a_pack_keeps_every_blob_through_a_compacted_index(file_store, make_files):
    from plait.ops.packgc import compact_index

    folder = make_files({"a.bin": b"a" * 100, "empty": b"", "z.txt": b"after the empty one"})
    v = file_store.log(str(folder), name="e")
    file_store.log(str(folder / "a.bin"), name="other")  # a second index file
    assert set(Blobs.stored(file_store)) == {e.digest for e in v.files()}  # the empty blob shares an offset
    assert compact_index(file_store) is not None
    fresh = _reopen(file_store)
    assert fresh.get("e:v0").read_bytes("z.txt") == b"after the empty one" and fresh.verify().ok


def test_every_log_whose_blobs_sat_in_a_dropped_pack_is_refused_not_only_the_first(file_store, make_files, monkeypatch):
    """Two threads have put their files into the open pack when a third write fails (a full disk)
    and the open packs are dropped: both logs are refused, and logging again stores everything."""
    import errno
    import threading

    from plait.store.base import BaseStore

    store = file_store.init()
    folders = {w: make_files({f"{w}/{i}.txt": f"{w} file {i}" for i in range(5)}, folder=w) for w in ("a", "b")}
    at_record = {w: threading.Event() for w in folders}
    go_on = threading.Event()
    create_version = BaseStore.create_or_find_version

    def paused(self, fields):
        at_record[threading.current_thread().name].set()
        assert go_on.wait(30)
        return create_version(self, fields)

    monkeypatch.setattr(BaseStore, "create_or_find_version", paused)
    outcomes: dict[str, object] = {}

    def log(w: str) -> None:
        try:
            outcomes[w] = store.log(str(folders[w]), name=w)
        except plait.StoreError as exc:
            outcomes[w] = exc

    threads = [threading.Thread(target=log, args=(w,), name=w) for w in folders]
    for t in threads:
        t.start()
    assert all(at_record[w].wait(30) for w in folders)  # both logs' blobs are in the open pack
    add = PackWriter.add

    def full_disk(self, digest, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PackWriter, "add", full_disk)
    with pytest.raises(OSError):
        store.blobs.put_bytes(b"a third write, which fails")
    monkeypatch.setattr(PackWriter, "add", add)
    go_on.set()
    for t in threads:
        t.join(30)
    assert all(isinstance(outcomes[w], plait.StoreError) and "log again" in str(outcomes[w]) for w in folders), outcomes
    assert store.backend.find("versions") == {}  # no version names a dropped blob
    monkeypatch.setattr(BaseStore, "create_or_find_version", create_version)
    for w in folders:
        assert store.log(str(folders[w]), name=w).read_bytes(f"{w}/3.txt") == f"{w} file 3".encode()
    assert plait.Store(store.url).verify().ok
