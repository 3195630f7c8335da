"""Digests of bytes and files, refusals of bad input, copy-on-write copies, and the manifest's
canonical form and stored encoding."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import blake3
import pytest
import xxhash

import plait
from plait.formats.manifest import Entry, Manifest, Reference, decode_manifest, encode_manifest
from plait.storage import digest as D
from plait.storage.local import clone_file


def test_a_file_digest_is_the_xxh3_128_of_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"hello plait" * 1000)
    fd = D.digest_file(str(path))
    assert fd == D.FileDigest(xxhash.xxh3_128_hexdigest(b"hello plait" * 1000), 11000, None)
    assert D.hash_bytes(b"") == xxhash.xxh3_128_hexdigest(b"") and D.is_digest(fd.digest)


def test_blake3_stores_hash_with_blake3(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 5000)
    fd = D.digest_file(str(path), D.BLAKE3)
    assert fd.digest == blake3.blake3(b"x" * 5000).hexdigest()
    assert D.is_digest(fd.digest, D.BLAKE3) and not D.is_digest(fd.digest, D.XXH3_128)


def test_bad_inputs_are_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(plait.SourceError, match="does not exist"):
        D.digest_file(str(tmp_path / "nope.bin"))
    with pytest.raises(plait.SourceError, match="use add_dir"):
        D.digest_file(str(tmp_path))
    with pytest.raises(plait.StoreError, match="plait knows xxh3-128, blake3"):
        D.new_hasher("md5")


def test_a_file_written_to_while_it_is_hashed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"a" * (3 * D.BUFFER_SIZE))

    appended = []

    def append(_: int) -> None:
        if not appended:  # a writer adds a line while the first buffer is being hashed
            appended.append(True)
            with open(path, "ab") as f:
                f.write(b"more")

    with pytest.raises(plait.FileChangedError, match="changed while it was being read"):
        D.digest_file(str(path), on_bytes=append)


def test_clone_file_copies_and_later_edits_do_not_reach_the_copy(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(b"0123456789" * 10000)
    clone_file(str(src), str(dst))
    with open(src, "r+b") as f:  # an edit in place, the case a hard link would corrupt
        f.write(b"XXXX")
    assert dst.read_bytes() == b"0123456789" * 10000


def sample_manifest() -> Manifest:
    h = D.hash_bytes
    return Manifest.of([
        Entry(path="b/é.txt", digest=h(b"1"), size=1),
        Entry(path="a/big.bin", digest=h(b"23"), size=3, chunks=((h(b"2"), 1), (h(b"3"), 2))),
        Entry(path="c/ref.csv", digest=h(b"r"), size=9, ref=Reference(uri="s3://bucket/ref.csv", etag="abc")),
    ])


def test_the_canonical_form_is_sorted_compact_json_equal_to_the_pydantic_dump() -> None:
    manifest = sample_manifest()
    expected = json.dumps(manifest.model_dump(mode="json", exclude_none=True), sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False).encode()
    assert manifest.canonical() == expected
    assert manifest.digest == xxhash.xxh3_128_hexdigest(expected)
    assert [e.path for e in manifest] == ["a/big.bin", "b/é.txt", "c/ref.csv"]
    changed = manifest.model_copy(update={"entries": manifest.entries[:1]})
    assert changed.digest == xxhash.xxh3_128_hexdigest(changed.canonical()) != manifest.digest
    assert b'"chunks":[["' in expected and b'"ref":{"etag":"abc","uri":"s3://bucket/ref.csv"}' in expected


def test_a_manifest_round_trips_through_its_stored_form(store: plait.Store) -> None:
    manifest = sample_manifest()
    digest, data = encode_manifest(manifest)
    assert zlib.decompress(data) == manifest.canonical()
    back = decode_manifest(data, digest)
    assert back == manifest and back.digest == digest
    assert store.put_manifest(manifest) == digest
    store._manifests.clear()
    assert store.manifest(digest) == manifest


def test_a_damaged_stored_manifest_is_refused() -> None:
    manifest = sample_manifest()
    digest, data = encode_manifest(manifest)
    raw = zlib.decompress(data).replace(b'"size":1', b'"size":2')
    with pytest.raises(plait.CorruptRecordError, match="does not match its digest"):
        decode_manifest(zlib.compress(raw), digest)
    with pytest.raises(plait.CorruptRecordError, match="cannot be read"):
        decode_manifest(b"not zlib", digest)


def test_a_small_file_is_read_whole_only_while_it_is_the_file_the_walk_found(tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(b"x" * 1000)
    key = D.stat_key(path.stat())
    assert D.read_small(str(path), key) == b"x" * 1000
    assert D.bytes_hasher()(b"x" * 1000) == D.hash_bytes(b"x" * 1000)
    assert D.bytes_hasher(D.BLAKE3)(b"x") == blake3.blake3(b"x").hexdigest()
    path.write_bytes(b"y" * 1000)  # the same size, written again: another mtime
    os.utime(path, ns=(key[2] + 1_000_000, key[2] + 1_000_000))
    with pytest.raises(plait.FileChangedError, match="changed while it was being read"):
        D.read_small(str(path), key)
    path.write_bytes(b"x" * 1001)  # grown
    with pytest.raises(plait.FileChangedError, match="changed while it was being read"):
        D.read_small(str(path), key)
    with pytest.raises(plait.SourceError, match="does not exist"):
        D.read_small(str(tmp_path / "gone.bin"), key)


def test_a_small_file_rewritten_after_the_walk_is_refused_and_nothing_is_logged(store: plait.Store, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.store.treestream import TreeStream

    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.txt").write_bytes(b"file %d" % i)
    real = TreeStream.flush

    def then_rewrite(self) -> None:  # a writer replaces a file after the walk took its stat, before it is read
        target = folder / "f3.txt"
        target.unlink()
        target.write_bytes(b"FILE 3")
        real(self)

    monkeypatch.setattr(TreeStream, "flush", then_rewrite)
    with pytest.raises(plait.FileChangedError, match="f3.txt changed while it was being read"):
        store.log(folder, name="ds")
    monkeypatch.setattr(TreeStream, "flush", real)
    assert store.log(folder, name="ds").read_bytes("f3.txt") == b"FILE 3"
    assert store.get("ds").number == 0
