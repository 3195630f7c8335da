"""Follow a tracked flow's task runs into whatever process its task runner runs them in.

:func:`on_start` is what the engine patch (``_engine.py``) calls when a flow or task run enters
``Running``. On the thread pool a task sees the flow's options and plait run in its copied
context. A runner that runs tasks in other processes (``ProcessPoolTaskRunner``, prefect-dask's
``DaskTaskRunner``, prefect-ray's ``RayTaskRunner``) copies no context variable, but it must
ship the flow run's context with every task (the task engine needs the flow run id), and
Prefect's ``serialize_context()`` puts the ``Flow`` object itself in it. So when a tracked flow
run starts, a small :class:`Carrier` (the flow's plait run id, its store and the track options)
is hung on the ``Flow`` object, keyed by the Prefect flow run id, and travels with each task.
Unpickling it in the worker calls :func:`arrive`, which installs the engine patch there before
the task engine starts; :func:`on_start` then finds the carrier through the worker's hydrated
``FlowRunContext`` and records the task run as a child of the flow's run. The worker's run is
top-level in its process, so its events are in the store before Prefect gets the task's state.

Where plait cannot follow, it says so once per process, with a :class:`PrefectTrackingWarning`: a ``memory://`` store with a runner that may use other
processes (at flow start); a worker that finds another store, or none, at the flow's store URL
(in that worker's log); a flow run whose finished task runs were none of them recorded (at flow
end, checked once per flow and runner type until one is followed).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
from typing import Any

import plait
from plait.integrations.prefect import _engine
from plait.integrations.prefect.options import TrackOptions
from plait.integrations.prefect.tracker import FlowTracker, TaskTracker, _warn, current_options, options_of, warn

#: The attribute of a ``Flow`` object that holds ``{prefect flow run id: Carrier}``.
CARRIERS_ATTR = "__plait_runs__"

_said: set[tuple[str, ...]] = set()
_followed: set[tuple[str, str]] = set()  # (flow name, runner type) whose task runs were seen recorded
_lock = threading.Lock()
_log = logging.getLogger("plait.prefect")


class Carrier:
    """What a task run in another process needs to be recorded as a child of its flow's plait run.

    :param flow_run_id: the Prefect flow run id it belongs to.
    :param parent: the flow run's plait run id.
    :param store: the store the flow records to (pickled as its URL and storage options).
    :param options: the flow's track options.
    :param store_id: the id of that store, to check that a worker reaches the same one.
    """

    __slots__ = ("flow_run_id", "options", "parent", "store", "store_id")

    def __init__(self, flow_run_id: str, parent: str, store: plait.Store, options: TrackOptions,
                 store_id: str | None) -> None:
        self.flow_run_id = flow_run_id
        self.parent = parent
        self.store = store
        self.options = options
        self.store_id = store_id

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle so that unpickling prepares the receiving process (:func:`arrive`)."""
        try:  # a worker must find the flow's run in the store before it records a child of it
            self.store.flush()
        except Exception:  # noqa: BLE001 — still queued and retried by the next flush; pickling goes on
            pass
        return arrive, (self.flow_run_id, self.parent, self.store, self.options, self.store_id)

    def __repr__(self) -> str:
        return f"<plait Carrier flow_run={self.flow_run_id} parent={self.parent} store={self.store.url}>"


def arrive(flow_run_id: str, parent: str, store: plait.Store, options: TrackOptions, store_id: str | None) -> Carrier:
    """Rebuild a :class:`Carrier` in the process that received it, and install the engine patch there.

    Called by unpickling, before the task engine starts; never raises (a task must not fail
    because plait cannot record it).
    """
    try:
        _engine.install(on_start)
    except Exception as exc:  # noqa: BLE001 — said once; the task runs unrecorded
        say_once(("install",), f"plait could not prepare process {os.getpid()} to record Prefect task runs "
                 f"({type(exc).__name__}: {exc}); the tracked flows' tasks that run here are not recorded.")
    return Carrier(flow_run_id, parent, store, options, store_id)


def carriers_of(flow: Any) -> dict[str, Carrier]:
    """Return the carriers hung on a ``Flow`` object, by Prefect flow run id."""
    found = getattr(flow, CARRIERS_ATTR, None)
    return found if isinstance(found, dict) else {}


def attach(flow: Any, carrier: Carrier) -> None:
    """Hang ``carrier`` on ``flow`` (a new dict: a runner may be pickling the old one in another thread)."""
    setattr(flow, CARRIERS_ATTR, {**carriers_of(flow), carrier.flow_run_id: carrier})


def detach(flow: Any, flow_run_id: str) -> None:
    """Take the carrier of ``flow_run_id`` off ``flow`` (copy on write, as :func:`attach`)."""
    carriers = dict(carriers_of(flow))
    if carriers.pop(flow_run_id, None) is not None:
        setattr(flow, CARRIERS_ATTR, carriers)


def on_start(kind: str, engine: Any) -> TaskTracker | TrackedFlowRun | None:
    """Start tracking a flow or task run that just entered ``Running``; ``None`` if it is not tracked."""
    try:
        if kind == "flow":
            options = options_of(engine.flow) or current_options()
            return TrackedFlowRun(engine, options) if options is not None else None
        own = options_of(engine.task)
        if current_options() is None and (own is None or own.store is None):
            carrier = _carrier_here()
            if carrier is not None:  # a task a runner shipped here with its tracked flow's context
                if not _reachable(carrier):
                    return None
                return TaskTracker(engine, own or carrier.options, parent=carrier.parent, store=carrier.store)
        options = own or current_options()
        return TaskTracker(engine, options) if options is not None else None
    except Exception as exc:
        _warn("start", engine, exc)
        return None


class TrackedFlowRun:
    """A tracked flow run, with its carrier hung on the ``Flow`` while it runs.

    :param engine: Prefect's flow run engine.
    :param options: how the flow is tracked.
    """

    def __init__(self, engine: Any, options: TrackOptions) -> None:
        self.tracker = FlowTracker(engine, options)
        self.flow_run_id = str(engine.flow_run.id)
        self.runner = type(getattr(engine.flow, "task_runner", None)).__name__
        self.local = _in_process(getattr(engine.flow, "task_runner", None))
        run = self.tracker.run
        store = plait.current_store(run.store)
        try:
            attach(engine.flow, Carrier(self.flow_run_id, run.id, store, dataclasses.replace(options, store=store), store.id))
            if not self.local and store.url.startswith("memory://"):
                say_once(("memory", store.url, self.runner), (
                    f"plait: flow {engine.flow.name!r} records to {store.url}, a memory:// store, which lives in this "
                    f"process only, but its task runner {self.runner} runs tasks in other processes: those task runs "
                    "cannot be recorded. Record to a folder or a bucket (track(flow, store=...) or $PLAIT_STORE)."))
        except Exception as exc:
            _warn("start", engine, exc)

    def finish(self, engine: Any, escaped: BaseException | None) -> None:
        """Check that the task runs were followed, record the end of the flow run, take the carrier off."""
        try:
            if escaped is None:
                self._check_followed(engine)
        except Exception as exc:  # noqa: BLE001 — the check is a courtesy; it must never break the flow
            _log.debug("plait could not check the task runs of %s: %s", self.flow_run_id, exc)
        try:
            self.tracker.finish(engine, escaped)
        finally:
            detach(engine.flow, self.flow_run_id)

    def _check_followed(self, engine: Any) -> None:
        """Say once if none of this flow run's finished task runs was recorded (another process lost them)."""
        store = self.tracker.run.store
        key = (str(engine.flow.name), self.runner)
        if self.local or key in _followed or store.url.startswith("memory://"):
            return
        done = _finished_task_runs(engine.flow_run.id)
        if not done:
            return
        recorded = _recorded_task_runs(store, self.tracker.run.id)
        if not done & recorded:
            store.refresh()  # a remote store is listed at most once a second: the workers' runs may be new
            recorded = _recorded_task_runs(store, self.tracker.run.id)
        if done & recorded:
            _followed.add(key)
            return
        say_once(("unfollowed", *key), (
            f"plait recorded none of the {len(done)} finished task runs of flow {key[0]!r}: its task runner "
            f"{self.runner} ran them where plait could not follow, so only the flow run is in the store. plait "
            "follows the thread pool, ProcessPoolTaskRunner, DaskTaskRunner and RayTaskRunner, which send the flow "
            "run's context (prefect.context.serialize_context()) with each task; with another runner, check that "
            "it does, and that plait is installed where its tasks run."))


def say_once(key: tuple[str, ...], message: str) -> None:
    """Warn once per process for ``key`` (logged to ``plait.prefect`` where warnings are errors)."""
    with _lock:
        if key in _said:
            return
        _said.add(key)
    warn(message)


def _carrier_here() -> Carrier | None:
    """Return the carrier of the flow run whose (hydrated) context this code runs in, if any."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow is None or context.flow_run is None:
        return None
    return carriers_of(context.flow).get(str(context.flow_run.id))


def _reachable(carrier: Carrier) -> bool:
    """Tell whether this process finds the flow's store at the carried URL; say once if it does not.

    A local folder seen from a worker on another host, or a bucket behind another endpoint, is
    another store or none: recording there would make a store nobody looks at.
    """
    try:
        found = carrier.store.id  # read once per process: the store object is opened once
    except Exception as exc:  # noqa: BLE001 — said in the warning
        found = f"unreadable: {type(exc).__name__}: {exc}"
    if found == carrier.store_id:
        return True
    say_once(("store", carrier.store.url, str(carrier.store_id)), (
        f"plait: the store of flow run {carrier.flow_run_id}, {carrier.store.url} (id {carrier.store_id}), is not "
        f"what this worker (host {socket.gethostname()}, process {os.getpid()}) finds at that URL "
        f"({found or 'no store'}), so the flow's task runs here are not recorded. Record to a store every worker "
        "reaches: a bucket, or a folder on a shared filesystem (track(flow, store=...) or $PLAIT_STORE)."))
    return False


def _in_process(runner: Any) -> bool:
    from prefect.task_runners import ThreadPoolTaskRunner

    return isinstance(runner, ThreadPoolTaskRunner)


def _finished_task_runs(flow_run_id: Any) -> set[str]:
    """Return the ids of the task runs of a flow run that are in a final state (one API call)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {str(r.id) for r in runs if r.state is not None and r.state.is_final()}


def _recorded_task_runs(store: plait.Store, parent: str) -> set[str]:
    """Return the Prefect task run ids of the plait runs recorded inside ``parent``."""
    return {str((r.info.get("prefect") or {}).get("task_run_id")) for r in store.runs(parent=parent)}
