"""Many machines write to one store at once: version numbers stay dense and unique, every
manifest and run is readable, and concurrent alias moves all land in the history.

Writers are separate processes (as separate machines would be), on a local folder and on the
loopback S3 server; they are held at a gate so that they really start together.
"""

from __future__ import annotations

import time

import pytest

import plait
from plait.formats import records as R

WRITERS = 8
#: Versions each writer logs. Fewer on S3: every request there is answered by the one loopback
#: server in the test process, which eight writers on two cores keep saturated; ten each still
#: has all eight racing for every number.
EACH = {"file": 25, "s3": 10}


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.slow)])
def shared_store(request: pytest.FixtureRequest):
    """A fresh store that several processes write to (a folder, or a bucket prefix)."""
    return request.getfixturevalue(f"{request.param}_store").init()


def test_eight_writers_get_dense_unique_versions(shared_store, spawn):
    each = EACH["s3" if shared_store.backend.protocol == "s3" else "file"]
    for w in range(WRITERS):
        spawn.start(shared_store, "log", "shared", str(each), f"writer-{w}", user=f"writer-{w}")
    started = time.perf_counter()
    spawn.go()
    spawn.wait(timeout=600)
    elapsed = time.perf_counter() - started
    total = WRITERS * each

    numbers = sorted(int(n) for n in shared_store.backend.listdir("versions/shared"))
    assert numbers == list(range(total))  # v0…v199 (file): no gap, no duplicate
    versions = shared_store.versions("shared")
    assert [v.number for v in versions] == list(range(total))
    contents = {v.read_bytes("shared") for v in versions}  # every manifest and blob readable
    assert contents == {f"writer-{w} item {i}".encode() for w in range(WRITERS) for i in range(each)}
    runs = [r for r in shared_store.runs() if r.outputs]
    assert len(runs) == WRITERS
    assert sorted(len(r.outputs) for r in runs) == [each] * WRITERS
    assert {r.user for r in runs} == {f"writer-{w}" for w in range(WRITERS)}
    assert {v.produced_by.id for v in versions} == {r.id for r in runs}
    assert shared_store.verify().ok
    print(f"\n{shared_store.backend.protocol}: {total} versions by {WRITERS} processes in {elapsed:.1f}s "
          f"= {total / elapsed:.0f} versions/s (including process start)")


def test_writers_logging_the_same_content_at_once_make_one_version_of_each(shared_store, spawn):
    # a pool's workers all preparing the same data: every tag is the same, so is every item
    for w in range(WRITERS // 2):
        spawn.start(shared_store, "log", "prepared", "3", "common", user=f"worker-{w}")
    spawn.go()
    spawn.wait(timeout=600)

    assert shared_store.backend.listdir("versions/prepared") == ["0", "1", "2"]
    versions = shared_store.versions("prepared")
    assert sorted(v.read_bytes("prepared") for v in versions) == [b"common item %d" % i for i in range(3)]
    runs = {r.id for r in shared_store.runs() if r.user.startswith("worker-")}
    assert len(runs) == WRITERS // 2
    for version in versions:  # each worker made each one: as its creator, or as one more producer
        assert {r.id for r in version.producers} == runs
    assert shared_store.verify().ok


def test_concurrent_alias_moves_end_on_one_of_the_writes_and_all_are_in_history(shared_store, spawn):
    for i in range(5):
        shared_store.log(f"v{i}".encode(), name="model")
    for w in range(6):
        spawn.start(shared_store, "alias", "model", "prod", "5", user=f"mover-{w}")
    spawn.go()
    spawn.wait()

    fresh = plait.Store(shared_store.url, storage_options=_options(shared_store))
    stored = [R.decode(R.Event, fresh.backend.read(k), k) for k in sorted(fresh.backend.find("events"))]
    moves = sorted((e for e in stored if e.kind == R.ALIAS_SET and e.data["alias"] == "prod"), key=lambda e: e.id)
    assert {e.user for e in moves} == {f"mover-{w}" for w in range(6)}
    assert fresh.get("model:prod").number == moves[-1].data["number"]  # the last write wins, for every reader
    history = [h for v in fresh.versions("model") for h in v.history() if h.kind == R.ALIAS_SET]
    assert sorted({(h.time, h.user, h.version) for h in history}) == sorted(
        {(e.time, e.user, f"model:v{e.data['number']}") for e in moves})


def _options(store: plait.Store) -> dict | None:
    fs = getattr(store.backend, "fs", None)
    return dict(fs.storage_options) if fs is not None and store.backend.protocol == "s3" else None
