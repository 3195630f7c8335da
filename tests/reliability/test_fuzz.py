"""Bad input, random or crafted, becomes a PlaitError: never a crash from deep inside, never a
write outside the destination, and the store still verifies afterwards."""

from __future__ import annotations

import json
import math
import os
import random
import zlib

import pytest

import plait
from plait.base.ids import new_ulid, utcnow
from plait.formats import records as R
from plait.storage.digest import hash_bytes

ALPHABET = ["a", "Z", "0", "-", "_", ".", "/", "\\", ":", "..", " ", "\x00", "\n", "é", "🙂", "*", "~", "%2e", "C:"]


def _random_text(rng: random.Random) -> str:
    size = rng.choice([0, 1, 3, 10, 127, 128, 129, 400])
    return "".join(rng.choice(ALPHABET) for _ in range(size))[: rng.choice([size, 5000])]


def test_random_names_and_specs_are_accepted_or_refused_with_a_plait_error(file_store):
    good = file_store.log(b"sane", name="sane")
    rng = random.Random(1234)
    for _ in range(300):
        text = _random_text(rng)
        for call in (lambda: file_store.get(text), lambda: file_store.get(f"sane:{text}"),
                     lambda: plait.Artifact(text), lambda: file_store.set_alias("sane:v0", text)):
            try:
                call()
            except plait.PlaitError:
                pass
    stored = ["blobs", "manifests"] if file_store.format == 1 else ["index", "packs"]
    assert sorted(os.listdir(file_store.url)) == sorted(["cache", "events", "plait.json", "versions", *stored])
    assert os.listdir(os.path.join(file_store.url, "versions")) == ["sane"]
    assert file_store.verify().ok and good.read_bytes("sane") == b"sane"


@pytest.mark.parametrize("metadata", [
    {"x": {1, 2}}, {"x": math.nan}, {"x": b"bytes"}, {1: "int key"}, {"x": object()}, {"x": math.inf},
], ids=["set", "nan", "bytes", "int-key", "object", "inf"])
def test_metadata_that_is_not_json_is_refused(file_store, metadata):
    with pytest.raises(plait.InvalidMetadataError, match="JSON"):
        file_store.log(b"data", name="m", metadata=metadata)
    assert not os.path.exists(os.path.join(file_store.url, "versions", "m"))


def _crafted_manifest(store: plait.Store, entries: list[dict]) -> str:
    raw = json.dumps({"format": 1, "algorithm": store.algorithm, "entries": entries}, sort_keys=True,
                     separators=(",", ":")).encode()
    digest = hash_bytes(raw, store.algorithm)
    store.backend.write(f"manifests/{digest[:2]}/{digest}", zlib.compress(raw))
    return digest


def _crafted_version(store: plait.Store, name: str, digest: str) -> None:
    record = {"format": 1, "name": name, "number": 0, "type": "dataset", "digest": digest, "size": 1,
              "file_count": 1, "description": "", "metadata": {}, "created_at": utcnow(), "created_by": None,
              "algorithm": store.algorithm}
    store.backend.create(f"versions/{name}/0", json.dumps(record).encode())


DIGEST = "0" * 32
CRAFTED = {
    "traversal": [{"path": "../../escaped.txt", "digest": DIGEST, "size": 1}],
    "absolute": [{"path": "/tmp/escaped.txt", "digest": DIGEST, "size": 1}],
    "drive": [{"path": "C:/escaped.txt", "digest": DIGEST, "size": 1}],
    "short-digest": [{"path": "ok.txt", "digest": "abc", "size": 1}],
    "long-digest": [{"path": "ok.txt", "digest": "a" * 200, "size": 1}],
    "negative-size": [{"path": "ok.txt", "digest": DIGEST, "size": -5}],
    "oversized-path": [{"path": "a" * 100_000, "digest": DIGEST, "size": 1}],
    "chunks-disagree": [{"path": "ok.txt", "digest": DIGEST, "size": 9, "chunks": [[DIGEST, 1]]}],
    "unknown-field": [{"path": "ok.txt", "digest": DIGEST, "size": 1, "exec": "rm -rf /"}],
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_manifests_are_refused_and_nothing_escapes_the_destination(file_store, tmp_path, kind):
    file_store.log(b"healthy", name="healthy")
    _crafted_version(file_store, "evil", _crafted_manifest(file_store, CRAFTED[kind]))
    dest = tmp_path / "box" / "dest"
    with pytest.raises(plait.PlaitError):
        file_store.get("evil:v0").download(dest)
    assert not (tmp_path / "box" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not os.path.exists("/tmp/escaped.txt")
    assert not dest.exists() or os.listdir(dest) == []
    problems = file_store.verify().problems
    assert {spec for spec, *_ in problems} <= {"evil:v0"}  # the crafted version is named, nothing else
    assert file_store.verify("healthy:v0").ok


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[]", b'{"format": 1}', b"x" * (17 << 20),
                                  json.dumps({"format": 1, "name": "../etc", "number": 0}).encode()],
                         ids=["invalid-json", "binary", "list", "missing-fields", "oversized", "bad-name"])
def test_crafted_version_records_become_corrupt_record_errors(file_store, body):
    file_store.init()
    file_store.backend.create("versions/evil/0", body)
    with pytest.raises(plait.PlaitError):
        file_store.read_version_record("evil", 0)
    with pytest.raises(plait.PlaitError):
        file_store.get("evil:v0")
    assert [(spec, path) for spec, path, _, _ in file_store.verify().problems] == [("evil:v0", "versions/evil/0")]


def test_a_crafted_event_does_not_break_the_store(file_store):
    file_store.log(b"fine", name="fine")
    day = utcnow()[:10]
    file_store.backend.create(f"events/{day}/{new_ulid()}", b'{"kind": "alias.set", "data": "garbage"')
    fresh = plait.Store(file_store.url)
    try:
        assert fresh.get("fine:v0").read_bytes("fine") == b"fine"
    except plait.PlaitError:
        pass  # refusing loudly is allowed; crashing with another exception is not
    assert R.decode(R.VersionRecord, file_store.backend.read("versions/fine/0"), "versions/fine/0").name == "fine"


def test_a_symlink_leaving_the_folder_is_refused_unless_asked(file_store, make_files, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    folder = make_files({"inside.txt": "in"})
    os.symlink(secret, folder / "link.txt")
    with pytest.raises(plait.SourceError, match="follow_external_symlinks=True"):
        file_store.log(plait.Artifact("data").add_dir(folder))  # found when the folder is listed: at log time
    art = plait.Artifact("data").add_dir(folder, follow_external_symlinks=True)
    assert file_store.log(art).read_bytes("link.txt") == b"outside"
