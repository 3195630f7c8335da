"""What every :class:`~plait.store.base.BaseStore` object of one store URL shares in a process.

Users and integrations may open the same store many times (``plait.Store(url)`` in several
places, a Prefect task, a Lightning callback); they must still share one queue of run events,
one scratch folder for a ``memory://`` store and one cache of gc marks, and the layers above
keep their own per-store objects (the opened :class:`plait.Store`, the implicit run) in
:meth:`SharedState.slot`. :func:`shared` is the one place these live.

At interpreter exit every queue is drained. Before the process forks too, so that a child never
records under a run whose start is still queued in its parent; the child starts with empty
queues, and every store object it inherited renews what cannot cross a fork (its index
connection, its fsspec filesystem, its locks).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from plait.errors import StoreError
from plait.store.events import EventWriter

T = TypeVar("T")

_states: dict[str, SharedState] = {}
_lock = threading.Lock()
_hooks_installed = False
_forked = False


@dataclass
class SharedState:
    """The per-process state of one store URL.

    :ivar url: the store URL.
    :ivar events: the queue of run events and the thread that writes them.
    :ivar marks: gc marks read so far (immutable records, read once): ``{key: (blobs, manifests, packs)}``.
    """

    url: str
    events: EventWriter
    marks: OrderedDict[str, tuple[frozenset[str], frozenset[str], frozenset[str]]] = field(default_factory=OrderedDict)
    _slots: dict[str, Any] = field(default_factory=dict)
    _scratch: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stores: weakref.WeakValueDictionary[int, Any] = field(default_factory=weakref.WeakValueDictionary)

    def register(self, store: Any) -> None:
        """Remember a store object of this URL, so that a forked child can renew it
        (``store.renew_after_fork()``). Not under the lock: a slot's ``make`` opens stores."""
        self._stores[id(store)] = store

    def stores(self) -> list[Any]:
        """Return the store objects of this URL alive in this process."""
        return list(self._stores.values())

    def slot(self, key: str, make: Callable[[], T]) -> T:
        """Return the object kept under ``key`` for this store, made by ``make()`` the first time."""
        with self._lock:
            if key not in self._slots:
                self._slots[key] = make()
            return self._slots[key]

    def get(self, key: str) -> Any:
        """Return the object kept under ``key`` (``None`` if there is none), making nothing."""
        with self._lock:
            return self._slots.get(key)

    def swap(self, key: str, old: Any, new: Any) -> Any:
        """Keep ``new`` under ``key`` if ``old`` is kept there; return what is kept afterwards."""
        with self._lock:
            if self._slots.get(key) is old:
                self._slots[key] = new
            return self._slots.get(key)

    def pop(self, key: str) -> Any:
        """Forget and return the object kept under ``key`` (``None`` if there is none)."""
        with self._lock:
            return self._slots.pop(key, None)

    def scratch_dir(self) -> str:
        """Return a private folder for this process (a ``memory://`` store's index), removed at exit."""
        with self._lock:
            if self._scratch is None:
                self._scratch = tempfile.mkdtemp(prefix="plait-memory-")
                atexit.register(shutil.rmtree, self._scratch, True)
            return self._scratch


def shared(url: str) -> SharedState:
    """Return the shared state of the store at ``url`` in this process."""
    global _hooks_installed
    with _lock:
        state = _states.get(url)
        if state is None:
            state = _states[url] = SharedState(url, EventWriter(url))
        if not _hooks_installed:
            at_exit(flush_all)
            os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
            _hooks_installed = True
        return state


def at_exit(func: Callable[[], None]) -> None:
    """Call ``func`` when the interpreter exits, while threads can still be started.

    ``concurrent.futures`` refuses new work once the interpreter begins to shut down (from a
    hook of its own in ``threading``, before ``atexit`` runs): an S3 request made from an
    ``atexit`` handler then fails with "cannot schedule new futures after shutdown". So ``func``
    runs from the same kind of hook, registered after that one (they run in reverse order, so
    ours comes first), and from ``atexit`` as a fallback; it must be harmless to call twice.
    """
    import concurrent.futures.thread  # noqa: F401  (its shutdown hook must be registered before ours)

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(func)
        except RuntimeError:  # the interpreter is already shutting down
            pass
    atexit.register(func)


def states() -> list[SharedState]:
    """Return the shared state of every store this process opened."""
    with _lock:
        return list(_states.values())


def flush_all() -> None:
    """Drain every store's queue of run events (at interpreter exit); report what could not be written."""
    for state in states():
        try:
            state.events.flush()
        except StoreError as exc:
            print(f"plait: {exc}", file=sys.stderr)


def _before_fork() -> None:
    for state in states():
        try:
            state.events.flush()
        except Exception:  # noqa: BLE001 — still queued: the parent writes them later, the child starts empty
            pass


def forked() -> bool:
    """Tell whether this process was forked from one that had opened a store (so it inherited
    that process's stores and active runs)."""
    return _forked


def _after_fork_in_child() -> None:
    global _lock, _forked
    _lock = threading.Lock()  # another thread of the parent may have held it
    _forked = True
    for state in list(_states.values()):  # the parent writes what it queued; the child starts empty
        state.events.reset()
        state._lock = threading.Lock()
        state._scratch = None  # a memory:// store's index: the child's copy of the store diverges from the parent's
        for store in list(state._stores.values()):
            try:
                store.renew_after_fork()
            except Exception:  # noqa: BLE001 — a hook cannot report; the store fails at its first use instead
                pass
