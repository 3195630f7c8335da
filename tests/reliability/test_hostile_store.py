"""A hostile (or careless) writer against a file store and the loopback S3 server.

Whoever can write the bucket can add objects, rewrite them and delete them. Against each thing
such a writer can do, plait must hold: nothing it finds is executed, nothing outside the
destination is read or written, no live version is lost, ``plait verify`` names every damaged
record, and every failure is one line. Each test plays one attack on both backends (the
``hostile`` fixture); read-only and full-disk stores need a mount and run on local folders.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from ulid import ULID

import plait
from plait.cli import main
from plait.formats import records as R
from plait.formats.manifest import Entry, Manifest
from plait.storage.blobs import blob_key
from plait.store.base import manifest_key


@pytest.fixture(params=["file", "s3"])
def hostile(request) -> plait.Store:
    """A store on a local folder, then on the loopback S3 server."""
    return request.getfixturevalue(f"{request.param}_store")


def env_for(store: plait.Store) -> dict[str, str]:
    """The environment a CLI process needs to open ``store`` (S3: the endpoint and keys)."""
    fs = getattr(store.backend, "fs", None)
    if fs is None or store.backend.protocol != "s3":
        return {}
    return {"AWS_ENDPOINT_URL": fs.storage_options["client_kwargs"]["endpoint_url"],
            "AWS_ACCESS_KEY_ID": fs.storage_options["key"], "AWS_SECRET_ACCESS_KEY": fs.storage_options["secret"]}


def cli(store: plait.Store, *args: str):
    """Run the real CLI in this process on ``store``; return click's result."""
    return CliRunner().invoke(main, ["--store", store.url, *args], env=env_for(store))


def one_line_error(result, code: int) -> str:
    """Assert the CLI failed with exit ``code`` and one line on stderr, no traceback; return the line."""
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plait: error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def fresh(store: plait.Store) -> plait.Store:
    """Another reader of the same store, its index rebuilt from the store alone."""
    other = plait.Store(store.url, storage_options=getattr(store.backend, "fs", None) and store.backend.fs.storage_options
                        if store.backend.protocol == "s3" else None)
    other.reindex()
    return other


def forged_event(kind: str, data: dict, *, before: str) -> R.Event:
    """An event whose id sorts just before the event ``before`` (so it is folded first)."""
    moment = ULID.from_str(before).timestamp - 0.001
    return R.Event(id=str(ULID.from_timestamp(moment)), kind=kind, time="2020-01-01T00:00:00Z", user="mallory", data=data)


def plant(store: plait.Store, event: R.Event) -> None:
    """Write an event record straight into the store, as a writer with bucket access can."""
    assert store.backend.create(event.key, R.encode(event))


def logged_event(store: plait.Store, name: str, number: int) -> R.Event:
    """Return the ``version.logged`` event that announced ``name:v<number>``."""
    keys = [k for k in store.backend.find("events") if k.count("/") == 2]
    events, _ = R.decode_events(store.backend.read_many(keys))
    return next(e for e in events if e.kind == R.VERSION_LOGGED and (e.data["name"], e.data["number"]) == (name, number))


def evil_version_data(store: plait.Store, name: str, number: int, payload: bytes) -> dict:
    """Store a manifest for ``payload`` and return version data that claims it is ``name:v<number>``."""
    digest = store.blobs.put_bytes(payload)
    manifest = Manifest.of([Entry(path="model.pt", digest=digest, size=len(payload))], store.algorithm)
    return {"name": name, "number": number, "type": "model", "digest": store.put_manifest(manifest),
            "size": len(payload), "file_count": 1, "created_at": "2020-01-01T00:00:00Z", "algorithm": store.algorithm}


# -- records are the truth; events are the history ---------------------------------------------


@pytest.mark.parametrize("algorithm", ["xxh3-128", "blake3"])
def test_a_forged_older_event_cannot_change_what_a_version_is_nor_make_gc_delete_it(hostile, algorithm):
    store = plait.Store(hostile.url, hash=algorithm,
                        storage_options=hostile.backend.fs.storage_options if hostile.backend.protocol == "s3" else None)
    real = store.log(b"real weights", name="model", type="model", aliases=["production"])
    forged = forged_event(R.VERSION_LOGGED, evil_version_data(store, "model", 0, b"evil weights"),
                          before=logged_event(store, "model", 0).id)
    plant(store, forged)
    plant(store, forged_event(R.VERSION_LOGGED, {**evil_version_data(store, "ghost", 0, b"boo"), "name": "ghost"},
                              before=forged.id))  # announces a version that has no record at all

    reader = fresh(store)
    for spec in ("model:v0", "model:production", "model"):
        assert reader.get(spec).digest == real.digest
    assert reader.get("model:v0").read_bytes("model") == b"real weights"
    with pytest.raises(plait.NotFoundError):
        reader.get("ghost:v0")
    report = reader.verify()
    assert not report.ok
    ignored = {(spec, path) for spec, path, _, reason in report.problems if reason.startswith("event ignored")}
    assert {s for s, _ in ignored} == {"model:v0", "ghost:v0"} and ("model:v0", forged.key) in ignored
    assert any("it announces model:v0 with digest" in r for _, _, _, r in report.problems)
    assert any(r.endswith("the record versions/ghost/0 it announces is missing") for _, _, _, r in report.problems)
    reader.gc(dry_run=False, grace_seconds=0)
    assert fresh(store).get("model:production").read_bytes("model") == b"real weights"
    assert fresh(store).get("model:v0").verify() == []
    assert store.backend.exists(manifest_key(real.digest))


def test_a_deleted_version_record_is_reported_and_its_number_never_reused(hostile):
    first = hostile.log(b"first", name="data")
    hostile.backend.delete(R.version_key("data", 0))
    reader = fresh(hostile)
    problems = {(s, p): r for s, p, _, r in reader.verify().problems}
    assert "is missing" in problems[("data:v0", R.version_key("data", 0))]
    result = cli(hostile, "verify")
    assert result.exit_code == 4 and "DAMAGED versions/data/0: " in result.output
    again = reader.log(b"second", name="data")
    assert again.spec == "data:v1" and again.read_bytes("data") == b"second" and again.digest != first.digest
    result = cli(hostile, "log", __file__, "--name", "data")
    assert result.exit_code == 0 and result.output.startswith("data:v2"), result.output


def test_a_garbled_version_record_is_named_by_verify_and_never_shadowed(hostile):
    hostile.log(b"kept", name="data")
    hostile.backend.write(R.version_key("data", 0), b'{"format": 1, "name": "data", "numb')
    reader = fresh(hostile)
    problems = {(s, p): r for s, p, _, r in reader.verify().problems}
    assert "cannot be read" in problems[("data:v0", R.version_key("data", 0))]
    assert reader.log(b"new", name="data").spec == "data:v1"


def test_a_rewritten_version_record_is_reported_and_another_versions_record_is_refused(hostile):
    a = hostile.log(b"a bytes", name="a")
    b = hostile.log(b"b bytes", name="b")
    hostile.flush()
    rewritten = hostile.read_version_record("a", 0).model_copy(update={"digest": b.digest})
    hostile.backend.write(R.version_key("a", 0), R.encode(rewritten))  # an immutable record, rewritten in place
    problems = {(s, p): r for s, p, _, r in hostile.verify().problems}
    assert "rewritten after it was indexed (digest changed)" in problems[("a:v0", R.version_key("a", 0))]
    hostile.backend.write(R.version_key("a", 0), hostile.backend.read(R.version_key("b", 0)))  # b's record copied to a
    reader = fresh(hostile)
    problems = {(s, p): r for s, p, _, r in reader.verify().problems}
    assert "holds the record of b:v0" in problems[("a:v0", R.version_key("a", 0))]
    assert reader.get("b:v0").read_bytes("b") == b"b bytes"
