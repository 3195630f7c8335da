"""What a run needs to know about the process it records from: pool children and their exits.

A run can be recorded from a process it was not started in: a ``fork`` child inherits the active
run of the thread that forked, and :func:`plait.carry` hands a run to any worker. Such processes
rarely end through ``atexit``: ``multiprocessing`` ends forked and forkserver children with
``os._exit``, and ``with Pool()`` ends its workers with ``SIGTERM``. So a run recorded away from
home writes its events as it goes (see :meth:`plait.Run.use`), and the implicit run of a pool
child is also finished by the pool's own exit hook (``multiprocessing.util.Finalize``, and
``multiprocess.util.Finalize`` for ``multiprocess``, the ``dill`` fork ``datasets`` uses).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable

#: The process-pool libraries whose children end through their own exit hook, not ``atexit``.
POOL_MODULES = ("multiprocessing", "multiprocess")

_lock = threading.Lock()
_finalizing: dict[str, int] = {}  # pool module -> the pid that registered its finalizer
_hinted = 0  # the pid that printed the unlinked-run hint


def pool_parent() -> str | None:
    """Return the pool library that started this process (``multiprocessing``/``multiprocess``), if one did."""
    for name in POOL_MODULES:
        module = sys.modules.get(name)
        parent = getattr(module, "parent_process", None)
        if parent is not None and parent() is not None:
            return name
    return None


def at_pool_exit(fn: Callable[[], None]) -> None:
    """Call ``fn`` when this pool child ends normally (once per process and pool library).

    Registered lazily: a child's bootstrap clears the registry it inherited.
    """
    pid = os.getpid()
    for name in POOL_MODULES:
        module = sys.modules.get(name)
        parent = getattr(module, "parent_process", None)
        if parent is None or parent() is None:
            continue
        with _lock:
            if _finalizing.get(name) == pid:
                continue
            _finalizing[name] = pid
        importlib.import_module(f"{name}.util").Finalize(None, fn, exitpriority=10)


def hint_unlinked(run_name: str, run_id: str, pool: str) -> None:
    """Say once per process, on stderr, that a pool child records to its own implicit run."""
    global _hinted
    pid = os.getpid()
    with _lock:
        if _hinted == pid:
            return
        _hinted = pid
    print(f"plait: process {pid}, started by {pool} from process {os.getppid()}, records to its own implicit run "
          f"{run_name!r} ({run_id}): a process started with spawn or forkserver does not inherit the run that was "
          "active where it was started. To record this work in that run, hand the pool plait.carry(fn) instead of "
          "fn (a Prefect task: put @track on its flow); to keep it apart, start a run in the worker with "
          "plait.run(...), which also silences this message.", file=sys.stderr, flush=True)
