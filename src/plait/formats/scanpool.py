"""The worker processes a large walk lists its folders with (see :mod:`plait.formats.scanworker`).

A :class:`ScanPool` sends each folder to the least busy worker and reads the replies when they
are wanted, keeping those that arrive first; nothing runs in a thread. A worker that cannot be
started, or dies, costs nothing but speed: its folders come back as ``None`` and the walk lists
them itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from contextlib import suppress

from plait.formats import scanworker

try:
    import fcntl
except ImportError:  # not on POSIX
    fcntl = None  # type: ignore[assignment]
from plait.formats.scanworker import read_frame, write_frame

#: Request bytes a worker may have waiting before the pool reads its replies first (well under a
#: pipe's 64 KiB, so neither side ever blocks on a full pipe while the other waits for it).
MAX_WAITING_BYTES = 32 * 1024
#: The size asked for each reply pipe (Linux): room for a worker to run ahead of the walk.
REPLY_PIPE_BYTES = 1 << 20


def usable_cores() -> int:
    """Return how many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Worker:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.waiting = 0  # requests sent, replies not read
        self.waiting_bytes = 0
        self.alive = True


class ScanPool:
    """Worker processes listing folders: :meth:`start` a pool, :meth:`submit` folders, ask each
    :meth:`result`, :meth:`close` it."""

    def __init__(self, workers: list[_Worker]) -> None:
        #: when the pool began: every listing it gives was taken after (a :func:`time.time_ns` reading)
        self.started_ns = time.time_ns()
        self._workers = workers
        self._number = 0
        self._sent: dict[int, tuple[_Worker, int]] = {}  # request -> its worker and its size
        self._early: dict[int, object] = {}  # replies read before they were wanted
        self._ahead: dict[str, int] = {}  # folders sent ahead (see ahead()) -> their request

    @classmethod
    def start(cls, count: int) -> ScanPool | None:
        """Start ``count`` workers; ``None`` if none can be started (no interpreter to run, no file to run)."""
        script = getattr(scanworker, "__file__", None)
        if not sys.executable or getattr(sys, "frozen", False) or not script or not os.path.isfile(script):
            return None  # an embedded or frozen Python, or plait inside a zip: no worker to run
        workers = []
        for _ in range(count):
            try:
                proc = subprocess.Popen([sys.executable, "-I", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, bufsize=0)
            except OSError:
                break
            if hasattr(fcntl, "F_SETPIPE_SZ"):
                with suppress(OSError):
                    fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, REPLY_PIPE_BYTES)
            workers.append(_Worker(proc))
        return cls(workers) if workers else None

    @property
    def processes(self) -> list[subprocess.Popen]:
        """The worker processes (for tests)."""
        return [w.proc for w in self._workers]

    def ahead(self, folders: Iterable[str]) -> int:
        """Send folders to be listed before anyone asks, as long as no worker has its fill of
        requests waiting (this never waits for a reply); return how many were sent. Submitting
        one of them later returns its request, so it is listed once."""
        sent = 0
        for folder in folders:
            worker = self._least_busy()
            if worker is None or worker.waiting_bytes + len(folder) + 16 > MAX_WAITING_BYTES:
                break
            if folder not in self._ahead:
                self._ahead[folder] = self.submit(folder)
                sent += 1
        return sent

    def _least_busy(self) -> _Worker | None:
        """The worker the next request goes to (``None`` once none is alive)."""
        return min((w for w in self._workers if w.alive), key=lambda w: w.waiting, default=None)

    def submit(self, folder: str) -> int:
        """Send ``folder`` to be listed; return the number its :meth:`result` is asked for with."""
        sent = self._ahead.pop(folder, None)
        if sent is not None:
            return sent
        number = self._number
        self._number += 1
        worker = self._least_busy()
        if worker is None:
            self._early[number] = None
            return number
        size = len(folder) + 16
        while worker.waiting_bytes + size > MAX_WAITING_BYTES and worker.alive:
            self._read_one(worker)
        if not worker.alive:
            self._early[number] = None
            return number
        try:
            write_frame(worker.proc.stdin, (number, folder))
        except (OSError, ValueError):
            self._lose(worker)
            self._early[number] = None
            return number
        worker.waiting += 1
        worker.waiting_bytes += size
        self._sent[number] = (worker, size)
        return number

    def result(self, number: int) -> object:
        """Return the reply to request ``number``: a :data:`~plait.formats.scanworker.Raw` listing,
        ``(errno, message)`` for a folder that cannot be listed, or ``None`` when its worker is gone."""
        while number not in self._early:
            worker, _ = self._sent[number]
            if not worker.alive or not self._read_one(worker):
                self._early[number] = None
        return self._early.pop(number)

    def _read_one(self, worker: _Worker) -> bool:
        """Read one reply of ``worker`` into the early ones; ``False`` (and the worker lost) at its end."""
        try:
            frame = read_frame(worker.proc.stdout.read)
        except (OSError, EOFError, ValueError):
            frame = None
        if frame is None:
            self._lose(worker)
            return False
        number, reply = frame
        _, size = self._sent.pop(number)
        worker.waiting -= 1
        worker.waiting_bytes -= size
        self._early[number] = reply
        return True

    def _lose(self, worker: _Worker) -> None:
        worker.alive = False
        for number, (w, _) in list(self._sent.items()):
            if w is worker:
                del self._sent[number]
                self._early.setdefault(number, None)

    def close(self) -> None:
        """Stop the workers (they hold nothing worth a goodbye) and reap them."""
        for worker in self._workers:
            with suppress(OSError):
                worker.proc.kill()
        for worker in self._workers:
            worker.proc.wait()
            for pipe in (worker.proc.stdin, worker.proc.stdout):
                with suppress(OSError):
                    pipe.close()
