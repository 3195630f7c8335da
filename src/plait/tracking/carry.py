"""Carried: a function bound to a run, which records into that run wherever it is called.

A process started with ``spawn`` or ``forkserver`` (the default start method from Python 3.14
on Linux, and on macOS and Windows already), a Dask or Ray worker, a joblib worker: none of
them inherits the run that was active where the work was handed out, so what they log would go
to an implicit run of their own, unlinked. :class:`Carried` pickles as the run's id and its
store (see :meth:`plait.Store.__reduce__`); called in a worker it makes that run active there
for the call (``child=None``) or opens a child run of it per call. The run's start is written to
the store before the callable is pickled, so the worker never records under a run the store
does not have yet.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

from plait.errors import CarryWarning
from plait.store.base import BaseStore
from plait.tracking.nodes import ACTIVE_RUN
from plait.tracking.run import Run

#: The kind of the child run each call records with ``child=``.
CALL_KIND = "call"

_warned: set[tuple[str, str | None]] = set()
_warned_lock = threading.Lock()


class Carried:
    """``fn`` bound to ``run``: wherever it is called, plait records into that run (see :func:`plait.carry`).

    :param fn: the function to call.
    :param run: the run to record into; started now if it was not.
    :param child: ``None`` to record into ``run`` itself; a run name to record each call as a
        child run of ``run`` (kind ``call``).
    """

    def __init__(self, fn: Callable[..., Any], run: Run, child: str | None = None) -> None:
        run.start()
        self.fn = fn
        self.child = child
        self.store = run.store
        self._ref = (run.id, run.name, run.kind, run.parent, run._home_pid)
        self._store_id = run.store.id
        self._run: Run | None = run  # the live run, in the process that made this; gone once pickled
        functools.update_wrapper(self, fn, updated=())

    @property
    def run_id(self) -> str:
        """The id of the run calls record into (or under)."""
        return self._ref[0]

    def __repr__(self) -> str:
        how = f"child runs {self.child!r} of" if self.child else "recording into"
        return f"<plait.carry {getattr(self.fn, '__qualname__', self.fn)!r} {how} run {self.run_id}>"

    def __getstate__(self) -> dict[str, Any]:
        try:  # the worker must find the run's start in the store before it records under it
            self.store.flush()
        except Exception:  # noqa: BLE001 — still queued and retried by the next flush; pickling goes on
            pass
        return {"fn": self.fn, "child": self.child, "store": self.store, "_ref": self._ref, "_store_id": self._store_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._run = None
        functools.update_wrapper(self, self.fn, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function with the run (or a new child run of it) active, and return what it returns."""
        if self._run is None and not self._reachable():
            return self.fn(*args, **kwargs)
        if self.child is not None:
            with Run(self.store, self.child, kind=CALL_KIND, parent=self.run_id):
                return self.fn(*args, **kwargs)
        run = self._run if self._run is not None else _adopt(self.store, *self._ref)
        if ACTIVE_RUN.get() is run:
            return self.fn(*args, **kwargs)
        token = ACTIVE_RUN.set(run)
        try:
            return self.fn(*args, **kwargs)
        finally:
            ACTIVE_RUN.reset(token)

    def _reachable(self) -> bool:
        """Tell whether the store at the carried URL is the run's store; warn once if it is not."""
        try:
            found = self.store.id
        except Exception as exc:  # noqa: BLE001 — said in the warning
            found = f"unreadable: {type(exc).__name__}: {exc}"
        if found == self._store_id:
            return True
        with _warned_lock:
            if (self.store.url, self._store_id) in _warned:
                return False
            _warned.add((self.store.url, self._store_id))
        warnings.warn(
            f"plait: the store of run {self.run_id}, {self.store.url} (id {self._store_id}), is not what process "
            f"{os.getpid()} finds at that URL ({found or 'no store'}), so the carried calls here are not recorded. "
            "Record to a store every worker reaches: a bucket, or a folder on a shared filesystem.",
            CarryWarning, stacklevel=3)
        return False


def _adopt(store: BaseStore, run_id: str, name: str, kind: str, parent: str | None, home_pid: int) -> Run:
    """Return a Run object for a run started in another process: it records here, and is never
    started or finished here."""
    run = Run(store, name, kind=kind, parent=parent, run_id=run_id)
    run._started = True
    run._home_pid = home_pid
    return run
