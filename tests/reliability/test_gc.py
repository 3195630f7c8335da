"""gc frees only what no live version references, is a dry run unless told, and never takes
a blob from a log in flight (the grace period), even with a writer running beside it."""

from __future__ import annotations

import os
import time

import pytest
from blobview import Blobs
from click.testing import CliRunner

import plait
from plait.cli import main
from plait.index import events as E
from plait.store.marks import read_marks


def test_gc_is_a_dry_run_by_default_and_frees_only_unreferenced_blobs(file_store):
    file_store.log(b"keep " * 100, name="a")
    orphan = file_store.blobs.put_bytes(b"crash garbage " * 10)  # a blob no version references
    file_store.blobs.commit()  # stored (in a pack of its own on format 2)
    runner = CliRunner()
    dry = runner.invoke(main, ["--store", file_store.url, "gc", "--grace", "0"])
    assert dry.exit_code == 0 and "would free 140 B in 1 blobs" in dry.output
    assert file_store.blobs.has(orphan)
    done = runner.invoke(main, ["--store", file_store.url, "gc", "--delete", "--grace", "0"])
    assert done.exit_code == 0 and "freed 140 B in 1 blobs" in done.output
    assert orphan not in Blobs.stored(file_store)
    assert file_store.get("a:v0").read_bytes("a") == b"keep " * 100
    assert file_store.verify().ok


def test_blobs_younger_than_the_grace_period_are_kept(file_store):
    file_store.init()
    young = file_store.blobs.put_bytes(b"just written by a log in flight")
    file_store.blobs.commit()
    report = file_store.gc(dry_run=False, grace_seconds=60)
    assert report.blobs == [] and report.kept_young == 1 and file_store.blobs.has(young)
    old = time.time() - 120
    os.utime(file_store.backend.local_path(Blobs.where(file_store, young)[0]), (old, old))
    marked = file_store.gc(dry_run=False, grace_seconds=60)  # old and unreferenced: marked, not deleted
    assert marked.blobs == [] and marked.marked_blobs == [young] and file_store.blobs.has(young)
    (mark,) = [m.key for m in read_marks(file_store)]
    os.utime(file_store.backend.local_path(mark), (old + 30, old + 30))  # the mark is 90 s old now
    assert file_store.gc(dry_run=False, grace_seconds=60).blobs == [young]
    assert young not in Blobs.stored(file_store)


def test_gc_beside_a_concurrent_writer_loses_nothing(file_store, spawn):
    file_store.init()
    spawn.start(file_store, "log", "stream", "30", "writer", gated=False)
    rounds = 0
    while spawn.procs[0].poll() is None:
        file_store.gc(dry_run=False, grace_seconds=30)
        rounds += 1
    spawn.wait()
    fresh = plait.Store(file_store.url)
    assert [v.number for v in fresh.versions("stream")] == list(range(30))
    assert fresh.verify().ok and rounds >= 1


def test_deleting_a_version_makes_its_unique_blobs_collectable(file_store):
    file_store.log(b"v0 bytes", name="m")
    v1 = file_store.log(b"v1 bytes", name="m", aliases=["prod"])
    unique = v1.entry("m").digest
    runner = CliRunner()
    refused = runner.invoke(main, ["--store", file_store.url, "delete", "m:v1"])
    assert refused.exit_code != 0 and "still has aliases" in refused.output and "--force" in refused.output
    assert runner.invoke(main, ["--store", file_store.url, "delete", "m:v1", "--force"]).exit_code == 0
    assert [h.kind for h in plait.Store(file_store.url).get("m:v0").history()][0] == "version.logged"
    kinds = [e.kind for e in E.of_version(file_store.catalog, "m", 1)]
    assert kinds[-1] == "version.deleted"
    root = v1.manifest.root.raw_size  # its tree (one node) is unique to it too
    report = file_store.gc(dry_run=False, grace_seconds=0)
    assert report.blobs == sorted([unique, v1.digest]) and report.bytes == len(b"v1 bytes") + root
    assert file_store.get("m:latest").number == 0 and file_store.verify().ok


def test_stale_temporary_files_of_crashed_writers_are_collected(file_store):
    file_store.init()
    stale = [file_store.backend.local_path("blobs/ab/.abcd.1234.tmp"), file_store.backend.local_path("index/.merged.5678.tmp")]
    old = time.time() - 7200
    for path in stale:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"half a file")
        os.utime(path, (old, old))
    report = file_store.gc(dry_run=False)
    assert report.temporaries == ["blobs/ab/.abcd.1234.tmp", "index/.merged.5678.tmp"] and report.bytes == 22
    assert not any(os.path.exists(path) for path in stale)


def test_a_negative_grace_period_is_refused(file_store):
    with pytest.raises(plait.StoreError, match="zero or more seconds"):
        file_store.gc(grace_seconds=-1)
