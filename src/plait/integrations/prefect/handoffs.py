"""Turn Prefect's ``task_inputs`` into the plait runs a task's arguments came from.

When a task receives a value another task returned, Prefect records the upstream task run in
the task run's ``task_inputs``. The task's plait run passes the plait runs of those task runs
as ``upstream=`` to :meth:`plait.Run.use`, so a path handed on links the version the upstream
task just logged, even when older versions hold the same bytes.

Prefect fills ``task_inputs`` on the thread pool (the default runner) and on prefect-dask's
``DaskTaskRunner``; ``ProcessPoolTaskRunner`` resolves upstream futures before shipping a task,
so its task runs have none and plait's own rule applies: the version produced last inside the
flow's run.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import plait

#: How many task runs of this process are remembered (the rest are found in the store).
REMEMBERED = 4096

_recent: OrderedDict[str, list[str]] = OrderedDict()  # Prefect task run id -> plait run ids (one per attempt)
_lock = threading.Lock()


def task_inputs(task_run: Any) -> dict[str, list[str]]:
    """Return ``{parameter: [upstream task run ids]}`` of a Prefect task run (those with any;
    Prefect's own keys ``wait_for`` and ``__parents__`` included)."""
    found: dict[str, list[str]] = {}
    for param, inputs in (getattr(task_run, "task_inputs", None) or {}).items():
        ids = sorted(str(i.id) for i in inputs if getattr(i, "input_type", "") == "task_run")
        if ids:
            found[param] = ids
    return found


def remember(task_run_id: str, run_id: str) -> None:
    """Note that the Prefect task run ``task_run_id`` is recorded as the plait run ``run_id``."""
    with _lock:
        runs = _recent.pop(task_run_id, [])
        if run_id not in runs:
            runs.append(run_id)
        _recent[task_run_id] = runs
        while len(_recent) > REMEMBERED:
            _recent.popitem(last=False)


def plait_runs(store: plait.Store, task_run_ids: Iterable[str]) -> list[str]:
    """Return the plait runs recording these Prefect task runs (every attempt), sorted.

    Task runs of this process are remembered; the others (run by another worker process) are
    looked up in the store, listed again once if some are still missing (a remote store is
    listed at most once a second, and the upstream task may have ended a moment ago).
    """
    found: set[str] = set()
    missing: set[str] = set()
    with _lock:
        for task_run_id in set(task_run_ids):
            if task_run_id in _recent:
                found.update(_recent[task_run_id])
                _recent.move_to_end(task_run_id)
            else:
                missing.add(task_run_id)
    if missing:
        found.update(_lookup(store, missing))
    return sorted(found)


def _lookup(store: plait.Store, task_run_ids: set[str]) -> set[str]:
    key = "prefect.task_run_id"
    runs = store.runs(info={key: sorted(task_run_ids)})
    if {r.info["prefect"]["task_run_id"] for r in runs} != task_run_ids:
        store.refresh()
        runs = store.runs(info={key: sorted(task_run_ids)})
    return {r.id for r in runs}
