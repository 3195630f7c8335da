"""Run bookkeeping is written off the caller's thread: in order, before any version that
follows it, visible to every reader in the process, flushed when a top-level run ends and at
exit, and never dropped when a write fails."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import plait
from plait.api.store import Store
from plait.base.ids import new_ulid
from plait.formats import records as R
from plait.store import events as eventwriter
from plait.tracking.run import Run


def stored_events(store: Store) -> list[R.Event]:
    """Every event file in the store, read straight from the backend, in id order."""
    keys = [k for k in store.backend.find("events") if not k.endswith(R.SEGMENT_SUFFIX)]
    events, _ = R.decode_events(store.backend.read_many(keys))
    return sorted(events, key=lambda e: e.id)


class Gate:
    """Holds the writer thread at its next write until opened; counts the writes."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch, fail: BaseException | None = None) -> None:
        self.open = threading.Event()
        self.writes = 0
        self.fail = fail
        real = store.write_event_record

        def write(event: R.Event) -> None:
            self.open.wait(10)
            if self.fail is not None:
                raise self.fail
            self.writes += 1
            real(event)

        monkeypatch.setattr(store, "write_event_record", write)


def test_a_top_level_run_ends_with_all_its_events_in_the_store_in_order(file_store: Store) -> None:
    with plait.run("outer", store=file_store) as outer:
        with plait.run("inner") as inner:
            pass
    kinds = [(e.kind, e.run) for e in stored_events(file_store)]
    assert kinds == [(R.RUN_STARTED, outer.id), (R.RUN_STARTED, inner.id), (R.RUN_FINISHED, inner.id), (R.RUN_FINISHED, outer.id)]


def test_a_nested_run_does_not_wait_for_its_events(file_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    file_store.init()
    gate = Gate(file_store, monkeypatch)
    with plait.run("outer", store=file_store):
        with plait.run("inner"):
            pass
        assert file_store.shared.events.pending == 3 and gate.writes == 0  # the inner run came and went; nothing written yet
        gate.open.set()
    assert file_store.shared.events.pending == 0 and gate.writes == 4


def test_reading_the_index_waits_for_queued_events_also_through_another_store_object(file_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    file_store.init()
    gate = Gate(file_store, monkeypatch)
    with plait.run("outer", store=file_store) as outer:
        threading.Timer(0.2, gate.open.set).start()
        other = Store(file_store.url)  # same URL: the same queue
        assert other.get_run(outer.id).status == "running"
        assert gate.writes == 1


def test_a_version_is_written_only_after_the_run_events_queued_before_it(file_store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("rows")
    with plait.run("train", store=file_store) as run:
        version = run.log(str(data), name="data")
        kinds = [e.kind for e in stored_events(file_store)]  # read while the run is still going
        assert kinds == [R.RUN_STARTED, R.VERSION_LOGGED]
        assert version.created_by == run.id


def test_a_failed_write_stays_queued_and_the_next_flush_retries_it(file_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    file_store.init()
    gate = Gate(file_store, monkeypatch, fail=OSError(28, "No space left on device"))
    gate.open.set()
    run = Run(file_store, "nightly").start()
    with pytest.raises(plait.StoreError, match=r"could not write 1 run event\(s\) to .*No space left on device.*still queued"):
        file_store.flush()
    assert file_store.shared.events.pending == 1 and stored_events(file_store) == []
    gate.fail = None  # the disk has room again
    file_store.flush()
    assert [(e.kind, e.run) for e in stored_events(file_store)] == [(R.RUN_STARTED, run.id)]


def test_a_block_that_raises_keeps_its_own_error_when_the_flush_fails(file_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    file_store.init()
    gate = Gate(file_store, monkeypatch, fail=OSError(5, "Input/output error"))
    gate.open.set()
    with pytest.raises(KeyError, match="the user's own error"):
        with plait.run("outer", store=file_store):
            raise KeyError("the user's own error")
    assert file_store.shared.events.pending == 2  # still queued for the next flush


def test_events_queued_when_the_process_exits_are_written(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code = (
        "import plait; from plait.tracking.run import Run; "
        f"r = Run(plait.Store({str(store)!r}), 'no-context').start(); r.finish(); print(r.id)"
    )
    run_id = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert [(e.kind, e.run) for e in stored_events(Store(str(store)))] == [(R.RUN_STARTED, run_id), (R.RUN_FINISHED, run_id)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_the_parent_writes_its_queue_before_forking_and_the_child_starts_empty(file_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    file_store.init()
    gate = Gate(file_store, monkeypatch, fail=OSError(5, "Input/output error"))
    gate.open.set()
    writer = file_store.shared.events
    run = Run(file_store, "parent").start()
    with pytest.raises(plait.StoreError):  # the write failed: the event stays queued, the writer thread waits
        file_store.flush()
    gate.fail = None
    assert writer.pending == 1
    pid = os.fork()
    if pid == 0:  # the child: the run's start is in the store already, and nothing is queued
        ok = writer.pending == 0 and [e.run for e in stored_events(file_store)] == [run.id]
        file_store.flush()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    file_store.flush()
    assert gate.writes == 1 and [e.run for e in stored_events(file_store)] == [run.id]


def test_an_idle_writer_thread_ends_and_the_next_event_starts_another(file_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventwriter, "IDLE_SECONDS", 0.05)
    file_store.init()
    writer = file_store.shared.events
    Run(file_store, "first").start()
    file_store.flush()
    deadline = time.monotonic() + 5
    while writer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer._thread is None
    Run(file_store, "second").start()
    file_store.flush()
    assert [e.kind for e in stored_events(file_store)] == [R.RUN_STARTED, R.RUN_STARTED]


def test_a_run_on_a_store_that_cannot_be_created_fails_at_its_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(plait.StoreError, match=r"cannot create a store at .*a-file/store: Not a directory\. Choose a folder"):
        with plait.run("train", store=str(blocker / "store")):
            pytest.fail("the block must not run")


def test_ids_sort_in_the_order_they_were_made_and_parse_as_ulids() -> None:
    from ulid import ULID

    ids = [new_ulid() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(str(ULID.from_str(i)) == i for i in ids[:100])
    assert abs(ULID.from_str(ids[-1]).timestamp - time.time()) < 5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_ulid().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    parent = new_ulid()
    assert child[10:] != parent[10:]  # the random parts differ (the time parts may not)


def test_a_memory_store_can_be_listed_while_another_thread_writes_to_it(memory_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # fsspec's memory filesystem is one dict. Once in a full test run, a gc listing its marks
    # while the event writer wrote failed with "dictionary changed size during iteration". Here
    # the listing lets go of the GIL after every item, so unguarded it fails every time.
    from fsspec.implementations.memory import MemoryFileSystem

    class SlowItems(dict):
        def items(self):  # type: ignore[override]
            for pair in dict.items(self):
                time.sleep(0.0005)
                yield pair

    monkeypatch.setattr(MemoryFileSystem, "store", SlowItems(MemoryFileSystem.store))
    memory_store.init()
    for i in range(20):
        memory_store.backend.create(f"events/2026-01-01/{i:08d}", b"{}")

    def write() -> None:
        for i in range(20):
            memory_store.backend.create(f"events/2026-01-02/{i:08d}", b"{}")
            time.sleep(0.002)

    written = threading.Thread(target=write)
    written.start()
    try:
        while written.is_alive():
            memory_store.backend.find("events")
    finally:
        written.join()
    assert len(memory_store.backend.find("events")) == 40


def test_flushing_threads_and_the_writer_thread_write_every_event_once_in_each_threads_order(file_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # a flush writes the queue on its own thread unless the writer thread holds a batch: with
    # both at work, nothing is written twice, nothing is lost, and each thread's order holds
    file_store.init()
    written: list[R.Event] = []
    real = file_store.write_event_record

    def write(event: R.Event) -> None:
        real(event)
        written.append(event)

    monkeypatch.setattr(file_store, "write_event_record", write)
    ids: dict[int, list[str]] = {}

    def work(n: int) -> None:
        mine = ids.setdefault(n, [])
        for i in range(40):
            run = Run(file_store, f"t{n}").start()
            run.finish()
            mine.append(run.id)
            if i % 3 == n % 3:
                file_store.flush()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    file_store.flush()
    assert len(written) == len({e.id for e in written}) == 4 * 40 * 2
    order = [(e.run, e.kind) for e in written]
    for mine in ids.values():
        mine_written = [pair for pair in order if pair[0] in set(mine)]
        assert mine_written == [(r, k) for r in mine for k in (R.RUN_STARTED, R.RUN_FINISHED)]
