"""Write a store's run bookkeeping (runs starting and finishing, versions used) off the caller's thread.

A run records two or three small events, and each is a file (or a PUT) of its own: on a local
disk that is five system calls, on S3 a round trip. A Prefect flow of hundreds of small tasks
would wait for all of them on its own thread, and in a process whose other threads hold the GIL
each system call can also wait to get it back. :class:`EventWriter` takes those events on a
queue and writes them, in order, on one background thread.

What stays true:

- **Order.** Events are written in the order they were submitted, and every synchronous write
  (a version logged, an alias moved, a note) first waits for the queue, so the store never holds
  a version whose run is missing.
- **Read your writes.** Reading the store's index first waits for the queue.
- **Durability.** The queue is drained when a top-level run ends, on :meth:`BaseStore.flush
  <plait.store.base.BaseStore.flush>`, before the process forks and at interpreter exit. A run
  recorded in a process it was not started in (inherited through ``fork``, carried to a worker)
  flushes after every use, since such a process often ends with ``os._exit`` or a ``SIGTERM``.
  Otherwise only a hard kill (``SIGKILL``, ``os._exit``) can lose queued run events, never a version.
- **Nothing is dropped on error.** A write that fails stays queued; the error is raised by the
  next :meth:`flush`, which retries.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

from plait.errors import StoreError
from plait.formats import records as R

#: A writer thread with nothing to do for this long ends; the next event starts another.
IDLE_SECONDS = 5.0


class EventSink(Protocol):
    """What the writer writes to: a store."""

    def write_event_record(self, event: R.Event) -> None:
        """Write one event to the store."""

    def fold_events(self, events: list[R.Event]) -> None:
        """Index events once they are in the store."""


class EventWriter:
    """A queue of events and the one thread that writes them, for one store URL.

    :param label: the store URL, for the thread's name and error messages.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self.reset()

    def reset(self) -> None:
        """Forget every queued event and the thread (a forked child starts empty)."""
        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[tuple[EventSink, R.Event]] = deque()
        self._busy = False  # a thread (the writer, or a flushing caller) holds a batch taken from the queue
        self._error: BaseException | None = None
        self._failed = False  # the head of the queue failed: wait for a flush to retry
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """How many events are not written yet."""
        return len(self._pending)

    def submit(self, sink: EventSink, event: R.Event) -> None:
        """Queue ``event`` to be written to ``sink`` after every event queued before it."""
        with self._cond:
            self._pending.append((sink, event))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"plait-events {self._label}", daemon=True)
                self._thread.start()
            elif not self._failed:
                self._cond.notify_all()

    def flush(self) -> None:
        """Return once every queued event is written.

        The calling thread writes what is queued itself unless the writer thread is busy with
        a batch (then it waits for that batch first): a caller that must wait anyway gains
        nothing from handing the work over, and in a busy process waking the writer thread and
        getting the GIL back costs milliseconds (a Prefect task in a worker flushes per task).
        Order holds: a batch is only ever taken from the head of the queue, by one thread at a time.

        :raises StoreError: if a write failed; the events stay queued and the next flush retries.
        """
        if not self._pending and not self._busy:  # the common case costs no lock
            return
        with self._cond:
            if self._failed:  # retry what failed before; its old error no longer counts
                self._failed, self._error = False, None
        while True:
            with self._cond:
                while self._busy:
                    self._cond.wait()
                error, self._error = self._error, None  # the writer thread's batch failed meanwhile
                if error is not None or not self._pending:
                    break
                batch = self._take()
            error = self._write(batch, keep_error=False)
            if error is not None:
                break
        if error is not None:
            raise StoreError(
                f"could not write {len(self._pending)} run event(s) to {self._label}: {error}. "
                "They are still queued: fix the cause and call store.flush() (or log again) to retry."
            ) from error

    def _take(self) -> list[tuple[EventSink, R.Event]]:
        """Take the whole queue as one batch (call with the lock held, nobody busy)."""
        self._busy = True
        return list(self._pending)

    def _write(self, batch: list[tuple[EventSink, R.Event]], *, keep_error: bool) -> BaseException | None:
        """Write a batch in order; drop what was written from the queue; return the error, if any.

        :param keep_error: keep the error for the next flush to raise (the writer thread's case).
        """
        done: list[tuple[EventSink, R.Event]] = []
        error: BaseException | None = None
        try:
            for sink, event in batch:
                sink.write_event_record(event)
                done.append((sink, event))
        except BaseException as exc:  # noqa: BLE001 — raised by this flush or the next one
            error = exc
        _index(done)
        with self._cond:
            for _ in done:
                self._pending.popleft()
            self._busy = False
            if error is not None:
                self._failed = True  # the writer thread leaves the head alone until a flush retries
                if keep_error:
                    self._error = error
            self._cond.notify_all()
        return error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending or self._failed or self._busy:
                    if not self._cond.wait(IDLE_SECONDS) and not self._pending and not self._busy:
                        self._thread = None  # idle: the next submit starts a new thread
                        return
                batch = self._take()
            self._write(batch, keep_error=True)


def _index(done: list[tuple[EventSink, R.Event]]) -> None:
    by_sink: dict[int, tuple[EventSink, list[R.Event]]] = {}
    for sink, event in done:
        by_sink.setdefault(id(sink), (sink, []))[1].append(event)
    for sink, events in by_sink.values():
        try:
            sink.fold_events(events)
        except Exception:  # noqa: BLE001 — the events are in the store; the index catches up on its next sync
            pass
