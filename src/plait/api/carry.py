"""``plait.carry``: hand a run to the workers of a process pool, Dask, Ray or joblib."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait.api.store import current_store
from plait.errors import InvalidInputError
from plait.formats.names import check_name, safe_name
from plait.tracking.carry import Carried
from plait.tracking.run import Run, run_for


def carry(fn: Callable[..., Any], run: Run | None = None, *, child: bool | str = False) -> Carried:
    """Bind ``fn`` to a run, so that wherever it is called, what it uses and logs is recorded there.

    A worker process started with ``spawn`` or ``forkserver`` (a ``ProcessPoolExecutor`` or
    ``multiprocessing.Pool`` with those start methods, Dask and Ray workers, joblib) does not
    inherit the run active where the work was handed out. Hand the pool ``plait.carry(fn)``
    instead of ``fn``, where you submit the work::

        with plait.run("featurize") as run, ProcessPoolExecutor(mp_context=get_context("spawn")) as pool:
            list(pool.map(plait.carry(featurize), shards))                 # uses and logs go to `run`
            list(pool.map(plait.carry(featurize, child=True), shards))     # one child run per call

    Call it when you hand out the work, not as a decorator: it binds the run active at that
    moment. A worker that forks from this process (the ``fork`` start method) inherits the
    active run and needs no ``carry``; it does no harm there, nor on a thread pool. Calls record
    in the worker only if it reaches the same store (a bucket, a shared folder); otherwise a
    :class:`plait.CarryWarning` says so once per process and the calls run unrecorded. The
    pickled callable holds the store's URL and storage options, credentials included.

    :param fn: the function to call in the worker (picklable by the pool: a module-level
        function or a ``functools.partial`` of one for ``multiprocessing``; Dask and Ray also
        take closures).
    :param run: the run to record into (default: the active run, else the process's implicit run).
    :param child: ``False``: each call records into ``run`` itself. ``True`` or a name: each call
        is a child run of ``run`` (kind ``call``), named after ``fn`` or ``child``.
    :returns: a picklable callable that calls ``fn`` and returns what it returns.
    :raises InvalidInputError: if ``fn`` is not callable, or ``run`` is not a live :class:`plait.Run`.
    :raises InvalidNameError: for a ``child`` name that breaks the naming rules.
    """
    if not callable(fn):
        raise InvalidInputError(f"plait.carry() takes the function to call in the worker, not a {type(fn).__name__}")
    if run is None:
        run = run_for(current_store())
    elif not isinstance(run, Run):
        raise InvalidInputError(f"plait.carry(run=...) takes a live plait.Run (from plait.run()), not a {type(run).__name__}")
    name: str | None
    if child is True:
        name = safe_name(_function_name(fn), "call")
    elif child is False or child is None:
        name = None
    elif isinstance(child, str):
        name = check_name(child, what="run name")
    else:
        raise InvalidInputError(f"plait.carry(child=...) takes True, False or a run name, not {child!r}")
    return Carried(fn, run, name)


def _function_name(fn: Callable[..., Any]) -> str:
    while not hasattr(fn, "__name__") and hasattr(fn, "func"):  # functools.partial
        fn = fn.func
    return str(getattr(fn, "__name__", "call"))
