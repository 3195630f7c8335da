"""Whole-store checks over columns: bulk lookups in index files, pack headers read as columns,
the index matched to the headers, and a compacted index merged from the files it replaces."""

from __future__ import annotations

import json
import os
import random
import zlib
from pathlib import Path

import pytest

import plait
from plait.errors import CorruptRecordError
from plait.storage import packindex
from plait.storage.packcheck import blobs_verified, header_sum, index_sum, read_header
from plait.storage.packindex import IndexFile, encode_index, encode_merged
from plait.storage.packs import KIND_DATA, TRAILER, PackEntry, SealedPack, pack_key, split_pack
from plait.store.shared import shared

ALGO = "xxh3-128"


def _entries(rng: random.Random, n: int, start: int = 0) -> list[PackEntry]:
    return [PackEntry(rng.randbytes(16).hex(), KIND_DATA, 0, start + 10 * i, 10, 10) for i in range(n)]


def _index(packs: list[SealedPack], name: str = "01M8X8892BKV4HND5W99X5V4DV-00000000") -> IndexFile:
    return IndexFile(name, encode_index(packs, ALGO), ALGO)


@pytest.mark.parametrize("two", [False, True], ids=["fanout", "fanout2"])
def test_bulk_lookups_answer_as_single_ones_do_duplicates_and_shared_prefixes_included(monkeypatch, two):
    if two:
        monkeypatch.setattr(packindex, "FANOUT2_ABOVE", 0)
    rng = random.Random(3)
    entries = _entries(rng, 3000)
    twin = entries[7].digest
    entries.append(PackEntry(twin, KIND_DATA, 0, 99_990, 10, 10))  # the same blob twice
    entries.append(PackEntry(twin[:16] + "0" * 16, KIND_DATA, 0, 99_980, 10, 10))  # another, same first 8 bytes
    entries.append(PackEntry(twin[:16] + "f" * 16, KIND_DATA, 0, 99_970, 10, 10))
    index = _index([SealedPack("ab" * 16, 0, tuple(entries))])
    absent = [rng.randbytes(16) for _ in range(50)] + [bytes.fromhex(twin[:16] + "1" * 16)]
    asked = [bytes.fromhex(e.digest) for e in entries] + absent
    found = index.find_all(b"".join(asked))
    assert found == [index.find(raw) for raw in asked]
    listed = {index.digest(k) for k in range(index.count)}
    for raw, i in zip(asked, found):
        if i < 0:
            assert raw not in listed
        else:  # the first of equal digests
            assert index.digest(i) == raw and (i == 0 or index.digest(i - 1) != raw)
    first = index.find(bytes.fromhex(twin))
    assert list(index.copies(first)) == [first, first + 1]


@pytest.mark.parametrize("two", [False, True], ids=["fanout", "fanout2"])
def test_a_digest_whose_bytes_straddle_two_entries_is_not_taken_for_one(monkeypatch, two):
    if two:
        monkeypatch.setattr(packindex, "FANOUT2_ABOVE", 0)
    a, b = bytes(2) + b"\x10" * 14, bytes(2) + b"\x20" * 14
    straddling = a[1:] + b[:1]  # the column holds these bytes from a's second byte on
    entries = [PackEntry(d.hex(), KIND_DATA, 0, 10 * i, 10, 10) for i, d in enumerate((a, b))]
    index = _index([SealedPack("ab" * 16, 0, tuple(entries))])
    assert bytes(index.digests).find(straddling) == 1
    assert index.find(straddling) == -1 and index.find_all(a + straddling + b) == [0, -1, 1]
    entries.append(PackEntry(straddling.hex(), KIND_DATA, 0, 20, 10, 10))  # and once it is an entry, it is found there
    index = _index([SealedPack("ab" * 16, 0, tuple(entries))])
    assert index.find(straddling) == 2 and index.find_all(straddling + a) == [2, 0]


def test_a_pack_header_read_as_columns_says_what_the_parsed_header_says(file_store):
    store = file_store.init()
    store.blobs.put_bytes(b"a file" * 50)
    store.blobs.put_bytes(b"")
    store.blobs.put_bytes(b"node bytes " * 40, kind="tree")
    store.blobs.commit()
    for key in store.backend.find("packs"):
        data = memoryview(store.backend.read(key))
        header = read_header(data, ALGO, key)
        entries = split_pack(data, ALGO, key)
        assert [(e.digest, e.kind, e.codec, e.offset, e.stored_len, e.raw_len) for e in entries] == [
            (header.digests[i * 16 : (i + 1) * 16].hex(), header.kinds[i], header.codecs[i], header.offsets[i],
             header.stored[i], header.raw[i]) for i in range(len(header))]
        assert blobs_verified(data, header, ALGO)


def _pack(rows: bytes, data: bytes = b"") -> bytes:
    header = zlib.compress(os.urandom(16) + rows)
    return data + header + TRAILER.pack(len(header), 1, b"PLPK")


@pytest.mark.parametrize("rows, message", [
    (bytes(16) + bytes([7, 0]) + (4).to_bytes(4, "little") * 2, "unknown kind 7"),
    (bytes(16) + bytes([0, 0]) + (4).to_bytes(4, "little") + (5).to_bytes(4, "little"), "impossible size"),
    (bytes(16) + bytes([0, 0]) + (9).to_bytes(4, "little") * 2, "lists 9 bytes of blobs, the pack holds 4"),
    (bytes(20), "cut short"),
])
def test_a_damaged_header_read_as_columns_is_refused_as_the_parser_refuses_it(rows, message):
    data = _pack(rows, b"abcd")
    with pytest.raises(CorruptRecordError, match=message):
        read_header(memoryview(data), ALGO, "packs/xx/x")
    with pytest.raises(CorruptRecordError, match=message):
        split_pack(data, ALGO, "packs/xx/x")


def test_a_blob_whose_bytes_changed_fails_the_column_check(file_store):
    store = file_store.init()
    store.blobs.put_bytes(b"one" * 30)
    store.blobs.put_bytes(b"two" * 30)
    store.blobs.commit()
    (key,) = store.backend.find("packs")
    data = bytearray(store.backend.read(key))
    data[95] ^= 1  # inside the second blob
    header = read_header(memoryview(bytes(data)), ALGO, key)
    assert not blobs_verified(memoryview(bytes(data)), header, ALGO)


def test_the_sum_of_an_index_equals_the_sum_of_its_packs_headers_and_nothing_else(file_store):
    store = file_store.init()
    for i in range(40):
        store.blobs.put_bytes(f"blob {i}".encode() * (i + 1))
    store.blobs.put_bytes(b"a node", kind="tree")
    store.blobs.commit()
    store.blobs.index.refresh()
    (index,) = store.blobs.index.active
    total = sum(header_sum(read_header(memoryview(store.backend.read(pack_key(p))), ALGO, p), n)
                for n, p in enumerate(index.pack_ids))
    assert total % (1 << 64) == index_sum(index)
    swapped = [SealedPack(p, 0, tuple(PackEntry(e.digest, e.kind, e.codec, e.offset + (1 if j == 3 else 0), e.stored_len, e.raw_len)
                                      for j, e in enumerate(entries)))
               for p, entries in store.blobs.index.packs().items()]
    moved = IndexFile(index.name, encode_index(swapped, ALGO), ALGO)
    assert index_sum(moved) != index_sum(index)  # one offset off by one: the sums differ


def test_a_compacted_index_lists_each_entry_of_its_files_once_without_the_dropped_packs():
    rng = random.Random(5)
    a, b, c = ("a1" * 16, "b2" * 16, "c3" * 16)
    pack_a, pack_b, pack_c = _entries(rng, 50), _entries(rng, 40), _entries(rng, 30)
    pack_b.append(PackEntry(pack_a[0].digest, KIND_DATA, 0, 400, 10, 10))  # a copy of a blob in another pack
    pack_c.append(PackEntry(rng.randbytes(16).hex(), KIND_DATA, 0, pack_c[1].offset, 0, 0))  # an empty blob shares an offset
    older = _index([SealedPack(a, 0, tuple(pack_a)), SealedPack(b, 0, tuple(pack_b))], "01AAAAAAAAAAAAAAAAAAAAAAAA-00000000")
    newer = _index([SealedPack(b, 0, tuple(pack_b)), SealedPack(c, 0, tuple(pack_c))], "01BBBBBBBBBBBBBBBBBBBBBBBB-00000000")
    merged = IndexFile("01CCCCCCCCCCCCCCCCCCCCCCCC-00000000",
                       encode_merged([newer, older], ALGO, drop={a}, supersedes=[older.name, newer.name]), ALGO)
    assert merged.supersedes == [older.name, newer.name] and sorted(merged.pack_ids) == sorted([b, c])
    listed = sorted((p, e.digest, e.offset, e.kind) for p, e in merged)
    assert listed == sorted({(b, e.digest, e.offset, e.kind) for e in pack_b} | {(c, e.digest, e.offset, e.kind) for e in pack_c})
    assert len(listed) == len(pack_b) + len(pack_c)  # pack b, listed by both files, once


@pytest.mark.parametrize("drop", [False, True], ids=["merged", "compacted"])
def test_an_index_written_a_range_at_a_time_is_the_index_merged_in_memory(tmp_path, monkeypatch, drop):
    monkeypatch.setattr(packindex, "COPY_BYTES", 64)  # the records column moves up in many small steps
    rng = random.Random(9)
    a, b, c = ("a1" * 16, "b2" * 16, "c3" * 16)
    pack_a, pack_b, pack_c = _entries(rng, 500), _entries(rng, 400), _entries(rng, 300)
    pack_b.append(PackEntry(pack_a[0].digest, KIND_DATA, 0, 4000, 10, 10))  # a copy of a blob in another pack
    older = _index([SealedPack(a, 0, tuple(pack_a)), SealedPack(b, 0, tuple(pack_b))], "01AAAAAAAAAAAAAAAAAAAAAAAA-00000000")
    newer = _index([SealedPack(b, 0, tuple(pack_b)), SealedPack(c, 0, tuple(pack_c))], "01BBBBBBBBBBBBBBBBBBBBBBBB-00000000")
    dropped = {a} if drop else set()
    in_memory = encode_merged([newer, older], ALGO, drop=dropped, supersedes=[older.name])

    trailer = packindex.write_merged([newer, older], ALGO, str(tmp_path / "merged"), drop=dropped, supersedes=[older.name])

    written = (tmp_path / "merged").read_bytes()
    assert written == bytes(in_memory) and trailer == written[-16:]
    assert IndexFile("01CCCCCCCCCCCCCCCCCCCCCCCC-00000000", written, ALGO).count == len(pack_b) + len(pack_c) + (0 if drop else len(pack_a))


def _reopen(store) -> plait.Store:
    shared(store.url).pop(f"plait.pack-index:{store.algorithm}")
    return plait.Store(store.url)


def test_verify_names_blobs_whose_index_entries_point_at_each_others_place_in_the_pack(file_store, make_files):
    folder = make_files({"a.txt": b"A" * 64, "b.txt": b"B" * 64, "c.txt": b"C" * 64})
    v0 = file_store.log(str(folder), name="one")
    file_store.log(str(folder / "a.txt"), name="two")
    a, b = v0.entry("a.txt").digest, v0.entry("b.txt").digest
    file_store.blobs.index.refresh()
    packs = file_store.blobs.index.packs()
    at = {e.digest: e.offset for entries in packs.values() for e in entries}

    def moved(e: PackEntry) -> PackEntry:  # a and b trade places: each index entry names the other's bytes
        offset = at[b] if e.digest == a else at[a] if e.digest == b else e.offset
        return PackEntry(e.digest, e.kind, e.codec, offset, e.stored_len, e.raw_len)

    lying = encode_index([SealedPack(p, 0, tuple(map(moved, entries))) for p, entries in packs.items()], ALGO)
    file_store.backend.delete_many(list(file_store.backend.find("index")))
    file_store.backend.write("index/01M8X8892BKV4HND5W99X5V4DV-00000000", lying)
    report = _reopen(file_store).verify()
    assert not report.ok and report.exit_code == 4
    assert any(p[0] == "packs" and "the pack does not hold it there" in p[3] for p in report.problems)
    named = sorted((spec, path) for spec, path, d, _ in report.problems if d in (a, b))
    assert named == [("one:v0", "a.txt"), ("one:v0", "b.txt"), ("two:v0", "a.txt")]
    assert all(d != v0.entry("c.txt").digest for _, _, d, _ in report.problems)  # its neighbour is fine


def test_verify_of_one_version_names_its_damaged_blob_and_a_missing_pack_loses_every_blob_in_it(file_store, make_files):
    folder = make_files({"a.txt": b"alpha" * 30, "b.txt": b"beta" * 30})
    v = file_store.log(str(folder), name="one")
    digest = v.entry("b.txt").digest
    location = file_store.blobs.locate(digest)
    path = Path(file_store.backend.local_path(pack_key(location.pack_id)))
    raw = bytearray(path.read_bytes())
    raw[location.entry.offset] ^= 1
    path.write_bytes(bytes(raw))
    report = _reopen(file_store).verify("one")
    assert [(s, p, d) for s, p, d, _ in report.problems] == [("one:v0", "b.txt", digest)]
    path.unlink()
    whole = _reopen(file_store).verify()
    assert ("packs", f"packs/{location.pack_id[:2]}/{location.pack_id}", "",
            "the pack is missing: every blob in it is lost; restore it from a copy (plait sync)") in whole.problems
    assert sorted(p for s, p, d, _ in whole.problems if d) == ["a.txt", "b.txt"]


def test_a_whole_check_reads_back_a_store_with_many_packs_and_index_files_clean(file_store, make_files):
    rng = random.Random(11)
    config = Path(file_store.init().backend.local_path("plait.json"))
    config.write_text(json.dumps({**json.loads(config.read_text()), "packs": {"target_bytes": 4096}}))  # many small packs
    file_store.reload_config()
    specs = []
    for round_ in range(3):
        folder = make_files({f"d{i % 7}/f{i}.bin": rng.randbytes(rng.randrange(0, 900)) for i in range(150)}, f"r{round_}")
        specs.append(file_store.log(str(folder), name="many").spec)
    fresh = _reopen(file_store)
    fresh.blobs.index.refresh()
    assert len(fresh.blobs.index.active) == 3 and len(fresh.backend.find("packs")) > 20
    checked, problems = fresh.blobs.check_all()
    assert problems == [] and all(flags == b"\1" * len(flags) for flags in checked.values())
    report = fresh.verify()
    assert report.ok and report.blobs >= 450


def test_an_index_file_of_no_entries_left_by_a_gc_that_took_every_pack_checks_clean(file_store, make_files):
    file_store.log(b"soon gone", name="gone")
    file_store.delete("gone:v0", force=True)
    file_store.gc(dry_run=False, grace_seconds=0)
    fresh = _reopen(file_store)
    fresh.blobs.index.refresh()
    assert [index.count for index in fresh.blobs.index.active] == [0] and not fresh.backend.find("packs")
    v = fresh.log(str(make_files({"a.txt": b"after the gc"})), name="new")
    again = _reopen(fresh)
    checked, problems = again.blobs.check_all()
    assert problems == [] and sorted(map(len, checked.values())) == [0, 2]
    unknown = "0" * 32
    with again.blobs.remembering(checked):
        assert again.blobs.checked_sizes([v.entry("a.txt").digest, unknown]) == {v.entry("a.txt").digest: 12, unknown: None}
    assert again.verify().ok
