"""A writer killed with SIGKILL at any moment leaves garbage at most: never a partial version.

Each trial starts a process logging a large folder of its own (one chunked 10 MiB file and 40
small files, so every trial hashes and writes from scratch) and kills it after a random delay.
After every kill the store must verify and every version record present must be whole. A last
writer is killed once it has begun storing blobs (a log hashes before it writes, so random
delays alone miss the write phase in some runs); logging its folder again must then succeed
and reuse every blob the killed writer managed to store.
"""

from __future__ import annotations

import os
import random
import signal
import time

import plait
from plait.formats import records as R
from plait.storage.blobs import blob_key
from plait.formats.manifest import decode_manifest
from plait.index import versions as V

TRIALS = 10


def _big_folder(make_files, seed: int = 7, folder: str = "big") -> str:
    rng = random.Random(seed)
    files = {f"shard/{i:03d}.bin": rng.randbytes(64 << 10) for i in range(40)}
    files["weights.bin"] = rng.randbytes(10 << 20)  # above the chunking threshold: several chunk blobs
    return str(make_files(files, folder=folder))


def _assert_no_partial_version(store: plait.Store) -> None:
    for key in store.backend.find("versions"):
        record = R.decode(R.VersionRecord, store.backend.read(key), key)  # a whole, valid record
        manifest = decode_manifest(store.backend.read(f"manifests/{record.digest[:2]}/{record.digest}"), record.digest)
        missing = [d for d in manifest.blobs() if not store.backend.exists(blob_key(d))]
        assert missing == [], f"{key} names blobs that are not stored"
    report = store.verify()
    assert report.ok, report.problems


def _blob_count(store: plait.Store) -> int:
    """Count whole blobs (a blob being written is a dot-named temporary file until renamed)."""
    return sum(not f.startswith(".") for _, _, files in os.walk(store.backend.local_path("blobs")) for f in files)


def _kill(proc, spawn) -> bool:
    """SIGKILL ``proc`` unless it has finished; return whether the kill ended it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    spawn.procs.remove(proc)
    return proc.returncode == -signal.SIGKILL


def test_sigkill_at_random_points_never_leaves_a_partial_version(file_store, spawn, make_files):
    store = file_store.init()
    rng = random.Random(11)
    # calibrate on other bytes of the same size: how long a whole log takes once it has started
    proc = spawn.start(store, "big", "calibrate", _big_folder(make_files, 8, "calib"), gated=False, stdout=-1)
    assert proc.stdout.readline() == b"started\n"
    began = time.perf_counter()
    spawn.wait()
    span = max(time.perf_counter() - began, 0.2)
    killed_mid_log = 0
    for trial in range(TRIALS):
        folder = _big_folder(make_files, 100 + trial, f"trial-{trial}")
        proc = spawn.start(store, "big", f"trial-{trial}", folder, gated=False, stdout=-1)
        assert proc.stdout.readline() == b"started\n"
        time.sleep(rng.uniform(0, 0.8 * span))
        killed_mid_log += _kill(proc, spawn)
        _assert_no_partial_version(store)
    assert killed_mid_log >= TRIALS // 2  # most kills landed while the log was running

    folder = _big_folder(make_files)
    proc = spawn.start(store, "big", "weights", folder, gated=False, stdout=-1)
    assert proc.stdout.readline() == b"started\n"
    blobs_before = _blob_count(store)
    while proc.poll() is None and _blob_count(store) == blobs_before:
        time.sleep(0.001)
    _kill(proc, spawn)
    _assert_no_partial_version(store)
    completed = "weights" in V.names(store.catalog)  # it may have stored its last blob as we looked

    before = {d: os.stat(store.backend.local_path(blob_key(d))).st_ino
              for d in (k.rsplit("/", 1)[-1] for k in store.backend.find("blobs"))}
    version = store.log(folder, name="weights")
    needed = version.manifest.blobs()
    reused = {d for d in needed if d in before}
    if not completed:
        assert reused, "the killed writer stored blobs that the next log should reuse"
    for digest in reused:  # reused, not written again
        assert os.stat(store.backend.local_path(blob_key(digest))).st_ino == before[digest]
    with open(os.path.join(folder, "weights.bin"), "rb") as f:
        assert version.read_bytes("weights.bin") == f.read()
    _assert_no_partial_version(store)
    print(f"\n{TRIALS} SIGKILL trials, {killed_mid_log} mid-log; last writer finished before kill: {completed}; "
          f"{len(reused)}/{len(needed)} blobs reused")
