"""A writer killed with SIGKILL at any moment leaves garbage at most: never a partial version.

Each trial starts a process logging a large folder of its own (one chunked 10 MiB file and 40
small files, so every trial hashes and writes from scratch) and kills it in one phase of the
log: the worker stops inside that phase and says so, so every kill lands where it is meant to,
however loaded the machine (before hashing, after the first and the twentieth file stored, in
the middle of a chunked file, after the manifest or the first tree node, after the version record and before its
event, after the event). A few more kills land after random delays. After every kill the store
must verify and every version record present must be whole. Logging a killed writer's folder
again must then succeed and reuse every blob it managed to store.
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


def _big_folder(make_files, seed: int = 7, folder: str = "big") -> str:
    rng = random.Random(seed)
    files = {f"shard/{i:03d}.bin": rng.randbytes(64 << 10) for i in range(40)}
    files["weights.bin"] = rng.randbytes(10 << 20)  # above the chunking threshold: several chunk blobs
    return str(make_files(files, folder=folder))


def _assert_no_partial_version(store: plait.Store) -> None:
    fresh = plait.Store(store.url)  # knows only what is stored: nothing a killed process held
    for key in store.backend.find("versions"):
        record = R.decode(R.VersionRecord, store.backend.read(key), key)  # a whole, valid record
        manifest = plait.Store(store.url).manifest(record.digest)  # its tree, every node of it read
        assert fresh.blobs.missing(manifest.blobs()) == [], f"{key} names blobs that are not stored"
    report = store.verify()
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


PHASES = ("hashing", "storing-1", "storing-20", "chunks", "pack", "index", "manifest", "record", "event")
RANDOM_TRIALS = 3


def _start(spawn, store, name: str, folder: str, *phase: str):
    proc = spawn.start(store, "big", name, folder, *phase, gated=False, stdout=-1)
    assert proc.stdout.readline() == b"started\n"
    return proc


@pytest.mark.parametrize("phase", PHASES)
def test_sigkill_in_each_phase_of_a_log_never_leaves_a_partial_version(file_store, spawn, make_files, phase):
    store = file_store.init()
    folder = _big_folder(make_files, 100, f"trial-{phase}")
    proc = _start(spawn, store, "big", folder, phase)
    assert proc.stdout.readline() == f"{phase}\n".encode()  # stopped inside that phase: the kill lands there
    assert _kill(proc, spawn)
    _assert_no_partial_version(store)
    again = store.log(folder, name="big")  # the killed writer's garbage, or its whole version, is no obstacle
    assert again.read_bytes("weights.bin") == Path(folder, "weights.bin").read_bytes()
    _assert_no_partial_version(store)
    if phase in ("record", "event"):  # it had made its version: a fresh index finds it, whole
        assert plait.Store(store.url).reindex() >= 1 and again.spec == "big:v0"


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
