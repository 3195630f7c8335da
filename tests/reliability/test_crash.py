"""A writer killed with SIGKILL at any moment leaves garbage at most: never a partial version;
a gc or a migration killed at any step loses no live blob.

Each trial starts a process logging a large folder of its own (one chunked 10 MiB file and 40
small files, so every trial hashes and writes from scratch) and kills it in one phase of the
log: the worker stops inside that phase and says so, so every kill lands where it is meant to,
however loaded the machine (before hashing, after the first and the twentieth file stored, in
the middle of a chunked file, after a long log's step sealed its packs into its local index, after the manifest or the first tree node, after the version record and before its
event, after the event). A few more kills land after random delays. After every kill the store
must verify and every version record present must be whole. Logging a killed writer's folder
again must then succeed and reuse every blob it managed to store. The phases of a packed log
that touch the store run on the loopback S3 server too.

A gc of a packed store is killed after the first new pack of a repack, after the repack's
index file, after the compacted index that drops the dead packs, and after their deletion; a
migration from format 1 after its first pack, its first index file and its new ``plait.json``.
Every live version then still reads its exact bytes, ``verify`` is clean, and running the gc or
the migration again finishes the job.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

import plait
from plait.formats import records as R
from plait.storage.blobs import blob_key
from plait.store import treestream


def _big_folder(make_files, seed: int = 7, folder: str = "big") -> str:
    rng = random.Random(seed)
    files = {f"shard/{i:03d}.bin": rng.randbytes(64 << 10) for i in range(40)}
    files["weights.bin"] = rng.randbytes(10 << 20)  # above the chunking threshold: several chunk blobs
    return str(make_files(files, folder=folder))


def _fresh(store: plait.Store) -> plait.Store:
    """Open the store anew: it knows only what is stored, nothing a killed process held."""
    return plait.Store(store.url, storage_options=store.storage_options or None)


def _assert_no_partial_version(store: plait.Store) -> None:
    fresh = _fresh(store)
    for key in store.backend.find("versions"):
        record = R.decode(R.VersionRecord, store.backend.read(key), key)  # a whole, valid record
        manifest = _fresh(store).manifest(record.digest)  # its tree, every node of it read
        assert fresh.blobs.missing(manifest.blobs()) == [], f"{key} names blobs that are not stored"
    report = _fresh(store).verify()
    assert report.ok, report.problems


def _kill(proc, spawn) -> bool:
    """SIGKILL ``proc`` unless it has finished; return whether the kill ended it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    spawn.procs.remove(proc)
    return proc.returncode == -signal.SIGKILL


PHASES = ("hashing", "storing-1", "storing-20", "chunks", "pack", "checkpoint", "merged-index", "index", "manifest",
          "record", "event")
RANDOM_TRIALS = 3


def _start(spawn, store, name: str, folder: str, *phase: str):
    proc = spawn.start(store, "big", name, folder, *phase, gated=False, stdout=-1)
    assert proc.stdout.readline() == b"started\n"
    return proc


def _on_s3(phase: str):
    """A phase tried on the loopback S3 server: slow (10-25 s each), so its file starts first."""
    return pytest.param("s3", phase, marks=pytest.mark.slow)


#: The phases of a packed log whose writes differ on S3 (the PUT of a pack, of an index file,
#: of a record), tried on the loopback S3 server as well.
S3_PHASES = ("storing-20", "pack", "index", "record")


@pytest.mark.parametrize(("where", "phase"), [("file", p) for p in PHASES] + [_on_s3(p) for p in S3_PHASES])
def test_sigkill_in_each_phase_of_a_log_never_leaves_a_partial_version(request, spawn, make_files, where, phase):
    store = request.getfixturevalue(f"{where}_store").init()
    folder = _big_folder(make_files, 100, f"trial-{phase}")
    proc = _start(spawn, store, "big", folder, phase)
    assert proc.stdout.readline() == f"{phase}\n".encode()  # stopped inside that phase: the kill lands there
    assert _kill(proc, spawn)
    _assert_no_partial_version(store)
    again = store.log(folder, name="big")  # the killed writer's garbage, or its whole version, is no obstacle
    assert again.read_bytes("weights.bin") == Path(folder, "weights.bin").read_bytes()
    _assert_no_partial_version(store)
    if phase in ("record", "event"):  # it had made its version: a fresh index finds it, whole
        assert _fresh(store).reindex() >= 1 and again.spec == "big:v0"


@pytest.mark.parametrize("where", ["file", pytest.param("s3", marks=pytest.mark.slow)])
def test_the_temporary_index_file_of_a_long_log_killed_while_writing_it_is_collected(request, spawn, make_files, monkeypatch, where):
    store = request.getfixturevalue(f"{where}_store").init()
    folder = _big_folder(make_files, 100, "half-an-index")
    proc = _start(spawn, store, "big", folder, "merged-index")
    assert proc.stdout.readline() == b"merged-index\n"
    assert _kill(proc, spawn)
    written = store.backend.local_path("index") if where == "file" else os.path.join(store.blobs.index.cache_dir, "index")
    (left,) = [n for n in os.listdir(written) if n.endswith(".tmp")]  # a store's index folder, or a cache's
    old = time.time() - 7200
    os.utime(os.path.join(written, left), (old, old))
    store.blobs.index.refresh()  # a reader meets no half-written index file (verify, which also empties a cache's, comes last)
    assert not store.blobs.index.files and not store.blobs.index.damaged  # not read, not even as a damaged file

    monkeypatch.setattr(treestream, "COMMIT_FILES", 1)  # this log writes its index file a range at a time too
    again = store.log(folder, name="big")
    if where == "file":  # gc takes a temporary of the store's a grace period old
        assert f"index/{left}" in store.gc(dry_run=False).temporaries
    assert not os.path.exists(os.path.join(written, left))  # in a cache folder, the next long log takes it
    assert again.read_bytes("weights.bin") == Path(folder, "weights.bin").read_bytes()
    _assert_no_partial_version(store)


def test_sigkill_at_random_points_never_leaves_a_partial_version(file_store, spawn, make_files):
    store = file_store.init()
    rng = random.Random(11)
    for trial in range(RANDOM_TRIALS):
        proc = _start(spawn, store, f"trial-{trial}", _big_folder(make_files, 200 + trial, f"random-{trial}"))
        time.sleep(rng.uniform(0, 0.5))  # anywhere: before, during or after the log
        _kill(proc, spawn)
        _assert_no_partial_version(store)


def test_a_format_1_writer_killed_while_storing_leaves_blobs_the_next_log_reuses(file_store, spawn, make_files):
    file_store.requested_format = 1
    store = file_store.init()
    folder = _big_folder(make_files)
    proc = _start(spawn, store, "weights", folder, "storing-20")
    assert proc.stdout.readline() == b"storing-20\n"
    assert _kill(proc, spawn)
    _assert_no_partial_version(store)
    before = {d: os.stat(store.backend.local_path(blob_key(d))).st_ino
              for d in (k.rsplit("/", 1)[-1] for k in store.backend.find("blobs"))}
    assert len(before) >= 20
    version = store.log(folder, name="weights")
    needed = version.manifest.blobs()
    reused = {d for d in needed if d in before}
    assert len(reused) >= 20, "the killed writer stored blobs that the next log should reuse"
    for digest in reused:  # reused, not written again
        assert os.stat(store.backend.local_path(blob_key(digest))).st_ino == before[digest]
    with open(os.path.join(folder, "weights.bin"), "rb") as f:
        assert version.read_bytes("weights.bin") == f.read()
    _assert_no_partial_version(store)


def test_packs_a_killed_writer_left_without_an_index_are_garbage_gc_takes(file_store, spawn, make_files):
    store = file_store.init()
    folder = _big_folder(make_files)
    proc = _start(spawn, store, "weights", folder, "pack")
    assert proc.stdout.readline() == b"pack\n"
    assert _kill(proc, spawn)
    orphans = set(store.backend.find("packs"))
    assert orphans and store.backend.find("index") == {}  # stored packs, no index file naming them
    _assert_no_partial_version(store)
    version = store.log(folder, name="weights")  # unindexed packs are not trusted: stored again
    assert version.read_bytes("weights.bin") == Path(folder, "weights.bin").read_bytes()
    report = store.gc(dry_run=False, grace_seconds=0)
    assert set(report.packs) == {k.rsplit("/", 1)[-1] for k in orphans}
    assert not orphans & set(store.backend.find("packs"))
    _assert_no_partial_version(store)


# -- gc and migration --------------------------------------------------------------------------

GC_PHASES = ("repack-pack", "repack", "compact", "delete")
#: Those tried on the loopback S3 server as well: a pack no index lists, an index superseding all.
S3_GC_PHASES = ("repack-pack", "compact")


def _store_with_garbage(store: plait.Store, make_files) -> dict[str, bytes]:
    """Log two versions sharing files and one to throw away, delete the first and the junk:
    the first version's data pack is then mostly dead (repacked), its tree pack and the junk's
    packs wholly dead (deleted). Return the files of the live version."""
    rng = random.Random(3)
    shared = {f"shared/{i}.bin": rng.randbytes(8 << 10) for i in range(10)}
    store.log(str(make_files({**shared, **{f"old/{i}.bin": rng.randbytes(8 << 10) for i in range(30)}}, folder="v0")), name="ds")
    live = {**shared, "new.bin": rng.randbytes(8 << 10)}
    store.log(str(make_files(live, folder="v1")), name="ds")
    store.log(str(make_files({"junk.bin": rng.randbytes(64 << 10)}, folder="junk")), name="junk")
    store.delete("ds:v0")
    store.delete("junk:v0")
    return live


def _assert_reads(store: plait.Store, spec: str, files: dict[str, bytes]) -> None:
    version = _fresh(store).get(spec)
    assert {e.path: version.read_bytes(e.path) for e in version.files()} == files
    report = _fresh(store).verify()
    assert report.ok, report.problems


def _killed_in(spawn, store: plait.Store, *args: str) -> None:
    proc = spawn.start(store, *args, gated=False, stdout=-1)
    assert proc.stdout.readline() == b"started\n"
    assert proc.stdout.readline() == f"{args[-1]}\n".encode()  # stopped inside that phase: the kill lands there
    assert _kill(proc, spawn)


@pytest.mark.parametrize(("where", "phase"), [("file", p) for p in GC_PHASES] + [_on_s3(p) for p in S3_GC_PHASES])
def test_a_gc_killed_in_any_phase_loses_no_live_blob_and_the_next_gc_finishes(request, spawn, make_files, where, phase):
    store = request.getfixturevalue(f"{where}_store").init()
    live = _store_with_garbage(store, make_files)
    before = set(store.backend.find("packs"))
    _killed_in(spawn, store, "gc", phase)
    _assert_reads(store, "ds:v1", live)
    report = _fresh(store).gc(dry_run=False, grace_seconds=0)
    _assert_reads(store, "ds:v1", live)
    assert report.repacked or phase != "repack-pack"  # killed before its index: the repack is done again
    after = set(store.backend.find("packs"))
    assert len(before - after) >= 3, "the dead and mostly dead packs are gone once the gc is run again"
    assert _fresh(store).gc(dry_run=True, grace_seconds=0).packs == []  # nothing left to take


MIGRATE_PHASES = ("pack", "index", "config")


@pytest.mark.parametrize(("where", "phase"), [("file", p) for p in MIGRATE_PHASES] + [_on_s3("index")])
def test_a_migration_killed_in_any_phase_leaves_a_readable_store_and_runs_again_to_the_end(
        request, spawn, make_files, where, phase):
    store = request.getfixturevalue(f"{where}_store")
    store.requested_format = 1
    store.init()
    rng = random.Random(5)
    files = {f"d{i % 4}/{i}.bin": rng.randbytes(2 << 10) for i in range(100)}
    store.log(str(make_files(files, folder="data")), name="ds")
    _killed_in(spawn, store, "migrate", phase)
    _assert_reads(store, "ds:v0", files)  # format 1 still, or format 2: readable either way
    report = _fresh(store).migrate()
    assert report.damaged == [] and _fresh(store).format == 2
    _assert_reads(store, "ds:v0", files)
    files["d0/new.bin"] = b"after the migration"
    again = _fresh(store).log(str(make_files(files, folder="data")), name="ds")
    assert again.number == 1
    _assert_reads(store, "ds:v1", files)
