"""Manifests: canonical form and digest, validation of entries, and reading stored bytes back."""

from __future__ import annotations

import json
import zlib

import pytest

from plait import CorruptRecordError, Entry, Manifest, Reference
from plait.formats.manifest import decode_manifest, encode_manifest
from plait.storage.digest import hash_bytes

D1 = hash_bytes(b"one")
D2 = hash_bytes(b"two")


def test_the_digest_does_not_depend_on_the_order_files_were_added() -> None:
    a = Manifest.of([Entry(path="b.txt", digest=D2, size=3), Entry(path="a.txt", digest=D1, size=3)])
    b = Manifest.of([Entry(path="a.txt", digest=D1, size=3), Entry(path="b.txt", digest=D2, size=3)])
    assert a.digest == b.digest
    assert [e.path for e in a] == ["a.txt", "b.txt"]
    assert a.size == 6 and len(a) == 2


def test_the_digest_is_the_hash_of_the_canonical_json() -> None:
    m = Manifest.of([Entry(path="a.txt", digest=D1, size=3)])
    raw = m.canonical()
    assert raw == b'{"algorithm":"xxh3-128","entries":[{"digest":"%s","path":"a.txt","size":3}],"format":1}' % D1.encode()
    assert m.digest == hash_bytes(raw)


def test_any_change_to_an_entry_changes_the_digest() -> None:
    base = Manifest.of([Entry(path="a.txt", digest=D1, size=3)]).digest
    assert Manifest.of([Entry(path="b.txt", digest=D1, size=3)]).digest != base
    assert Manifest.of([Entry(path="a.txt", digest=D2, size=3)]).digest != base
    assert Manifest.of([Entry(path="a.txt", digest=D1, size=4)]).digest != base


def test_encode_then_decode_round_trips_and_checks_the_digest() -> None:
    m = Manifest.of([
        Entry(path="big.bin", digest=D1, size=5, chunks=((D1, 2), (D2, 3))),
        Entry(path="ref/x.csv", digest=D2, size=10, ref=Reference(uri="s3://b/x.csv", etag='"abc"')),
    ])
    digest, data = encode_manifest(m)
    assert digest == m.digest
    assert zlib.decompress(data) == m.canonical()
    assert decode_manifest(data, digest) == m
    assert m.blobs() == {D1: 2, D2: 3}  # references hold no blobs


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "../x", "digest": D1, "size": 1}, "climbs out"),
        ({"path": "/etc/passwd", "digest": D1, "size": 1}, "is absolute"),
        ({"path": "C:/x", "digest": D1, "size": 1}, "is absolute"),
        ({"path": "a//b", "digest": D1, "size": 1}, "not in normal form"),
        ({"path": "a", "digest": "XYZ", "size": 1}, "lowercase hex"),
        ({"path": "a", "digest": D1, "size": -1}, "greater than or equal to 0"),
        ({"path": "a", "digest": D1, "size": 4, "chunks": [[D1, 1]]}, "do not add up"),
        ({"path": "a", "digest": D1, "size": 1, "extra": 1}, "Extra inputs"),
    ],
)
def test_bad_entries_are_refused(entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Entry.model_validate(entry)


def test_a_path_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'a' appears twice"):
        Manifest.of([Entry(path="a", digest=D1, size=1), Entry(path="a", digest=D2, size=1)])


def _stored(body: dict) -> tuple[str, bytes]:
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hash_bytes(raw), zlib.compress(raw)


@pytest.mark.parametrize("path", ["../../outside.txt", "/abs.txt", "D:\\x.txt"])
def test_a_crafted_stored_manifest_with_an_escaping_path_is_refused(path: str) -> None:
    digest, data = _stored({"algorithm": "xxh3-128", "format": 1, "entries": [{"path": path, "digest": D1, "size": 3}]})
    with pytest.raises(CorruptRecordError, match="cannot be read") as info:
        decode_manifest(data, digest, "manifests/ab/x")
    assert info.value.key == "manifests/ab/x"


def test_stored_bytes_that_do_not_match_their_digest_are_refused() -> None:
    digest, data = encode_manifest(Manifest.of([Entry(path="a", digest=D1, size=1)]))
    other = Manifest.of([Entry(path="b", digest=D1, size=1)])
    with pytest.raises(CorruptRecordError, match="does not match its digest"):
        decode_manifest(encode_manifest(other)[1], digest)
    with pytest.raises(CorruptRecordError, match="cannot be read"):
        decode_manifest(b"not zlib", digest)
    with pytest.raises(CorruptRecordError, match="cannot be read"):
        decode_manifest(zlib.compress(b"[1, 2"), digest)


def test_an_entry_that_is_both_a_file_and_a_folder_is_refused_by_name():
    from plait import InvalidPathError

    with pytest.raises(InvalidPathError, match="entry 'a' is both a file and a folder .*'a/b'"):
        Manifest.of([Entry(path="a-b", digest=D1, size=1), Entry(path="a", digest=D1, size=1), Entry(path="a/b", digest=D1, size=1)])
    with pytest.raises(InvalidPathError, match="entry 'x/y' is both a file and a folder"):
        Manifest.of([Entry(path="x/y/z/w", digest=D1, size=1), Entry(path="x/y", digest=D1, size=1)])


def test_a_crafted_manifest_error_names_the_entry():
    body = {"algorithm": "xxh3-128", "format": 1, "entries": [
        {"path": "ok.txt", "digest": D1, "size": 1},
        {"path": "bad.txt", "digest": "not-hex", "size": 1},
    ]}
    raw = json.dumps(body).encode()
    with pytest.raises(CorruptRecordError, match="entry 'bad.txt' field digest: digest 'not-hex'"):
        decode_manifest(zlib.compress(raw), hash_bytes(raw))
    body["entries"][1] = {"path": "ok.txt/inner", "digest": D1, "size": 1}
    raw = json.dumps(body).encode()
    with pytest.raises(CorruptRecordError, match="entry 'ok.txt' is both a file and a folder"):
        decode_manifest(zlib.compress(raw), hash_bytes(raw))
