"""Every private Prefect name plait relies on, in one place.

Prefect 3 has no public hook that sees every task run with its resolved parameters and its
return value (task state hooks must be attached to each task, and do not get the parameters),
so plait wraps the ``start`` context manager of Prefect's four run engines:

- ``prefect.task_engine.SyncTaskRunEngine.start`` / ``AsyncTaskRunEngine.start``
- ``prefect.flow_engine.FlowRunEngine.start`` / ``AsyncFlowRunEngine.start``

``start`` wraps one whole task or flow run, retries included: when it yields, the run exists
(``engine.task_run`` / ``engine.flow_run``), its parameters are resolved (``engine.parameters``)
and its state is ``Running``; the code after the yield runs in the same context as the user's
function, so the plait run made active there is the parent of every run started inside. When
the body ends, ``engine.state`` is final and the private ``engine._return_value`` /
``engine._raised`` hold what the function returned or raised.

:func:`check` verifies each of these names, and that ``prefect.context.FlowRunContext.serialize()``
ships the ``Flow`` object itself, which is how a tracked flow reaches task runners' worker
processes (see ``runners.py``); ``tests/integrations/prefect/test_engine.py`` calls it so a
Prefect release that changes them fails loudly. :func:`install` is idempotent
(worker processes re-import modules, and ``track`` calls it every time).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

MARK = "__plait_patched__"
_lock = threading.Lock()

#: ``(module, class)`` of every engine whose ``start`` is wrapped, and whether it is async.
ENGINES = (
    ("prefect.task_engine", "SyncTaskRunEngine", False, "task"),
    ("prefect.task_engine", "AsyncTaskRunEngine", True, "task"),
    ("prefect.flow_engine", "FlowRunEngine", False, "flow"),
    ("prefect.flow_engine", "AsyncFlowRunEngine", True, "flow"),
)
#: The engine attributes read after ``start`` yields.
ATTRIBUTES = {
    "task": ("task", "task_run", "parameters", "state", "_return_value", "_raised"),
    "flow": ("flow", "flow_run", "parameters", "state", "_return_value", "_raised"),
}


def _engine_class(module: str, name: str) -> type:
    import importlib

    return getattr(importlib.import_module(module), name)


def check() -> list[str]:
    """Return what plait needs from Prefect's internals and cannot find (empty when all is there)."""
    import dataclasses
    import inspect

    problems = []
    for module, name, is_async, kind in ENGINES:
        try:
            cls = _engine_class(module, name)
        except (ImportError, AttributeError):
            problems.append(f"{module}.{name} is gone")
            continue
        start = getattr(cls, "start", None)
        original = inspect.unwrap(start) if callable(start) else None  # through plait's wrapper and @contextmanager
        if original is None:
            problems.append(f"{name}.start is gone")
        elif inspect.isasyncgenfunction(original) != is_async or not (is_async or inspect.isgeneratorfunction(original)):
            problems.append(f"{name}.start is no longer a{'n async' if is_async else ''} generator context manager")
        fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        fields |= {n for n in dir(cls)}
        problems += [f"{name}.{attr} is gone" for attr in ATTRIBUTES[kind] if attr not in fields]
    try:
        from prefect.utilities.annotations import NotSet  # noqa: F401
    except ImportError:
        problems.append("prefect.utilities.annotations.NotSet is gone")
    return problems + _context_problems()


def _context_problems() -> list[str]:
    """Check what carries a tracked flow to other processes: the flow run context ships the Flow."""
    try:
        from prefect.context import FlowRunContext
    except ImportError:
        return ["prefect.context.FlowRunContext is gone"]
    missing = [f"FlowRunContext.{f} is gone" for f in ("flow", "flow_run") if f not in FlowRunContext.model_fields]
    if missing:
        return missing
    marker = object()
    try:
        shipped = FlowRunContext.model_construct(flow=marker, result_store=None).serialize().get("flow")
    except Exception as exc:  # noqa: BLE001 — reported as the problem it is
        return [f"FlowRunContext.serialize() fails on a bare context ({type(exc).__name__}: {exc})"]
    return [] if shipped is marker else ["FlowRunContext.serialize() no longer ships the Flow object to other processes"]


def install(on_start: Callable[[str, Any], Any]) -> None:
    """Wrap the ``start`` of Prefect's run engines, once per process.

    :param on_start: called as ``on_start(kind, engine)`` (``kind`` is ``task`` or ``flow``)
        right after a run entered ``Running``; it returns ``None`` or an object whose
        ``finish(engine, exc)`` is called when the run is over (``exc``: an exception that
        escaped Prefect's own handling, usually ``None``). Neither may raise.
    """
    with _lock:
        for module, name, is_async, kind in ENGINES:
            cls = _engine_class(module, name)
            start = cls.__dict__.get("start")
            if start is None or getattr(start, MARK, False):
                continue
            wrapped = _wrap_async(start, kind, on_start) if is_async else _wrap_sync(start, kind, on_start)
            setattr(wrapped, MARK, True)
            wrapped.__wrapped__ = start  # type: ignore[attr-defined]
            setattr(cls, "start", wrapped)


def uninstall() -> None:
    """Put Prefect's own ``start`` methods back (for tests)."""
    with _lock:
        for module, name, _, _ in ENGINES:
            cls = _engine_class(module, name)
            start = cls.__dict__.get("start")
            if start is not None and getattr(start, MARK, False):
                setattr(cls, "start", start.__wrapped__)


def installed() -> bool:
    """Tell whether every engine's ``start`` is wrapped."""
    return all(getattr(_engine_class(m, n).__dict__.get("start"), MARK, False) for m, n, _, _ in ENGINES)


def _wrap_sync(start: Callable[..., Any], kind: str, on_start: Callable[[str, Any], Any]) -> Callable[..., Any]:
    @contextmanager
    def plait_start(self: Any, *args: Any, **kwargs: Any) -> Iterator[None]:
        with start(self, *args, **kwargs):
            handle = on_start(kind, self) if _is_running(self) else None
            try:
                yield
            except BaseException as exc:  # a crash or an interrupt inside Prefect's loop
                if handle is not None:
                    handle.finish(self, exc)
                raise
            if handle is not None:
                handle.finish(self, None)

    return plait_start


def _wrap_async(start: Callable[..., Any], kind: str, on_start: Callable[[str, Any], Any]) -> Callable[..., Any]:
    @asynccontextmanager
    async def plait_start(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[None]:
        async with start(self, *args, **kwargs):
            handle = on_start(kind, self) if _is_running(self) else None
            try:
                yield
            except BaseException as exc:  # a crash or an interrupt inside Prefect's loop
                if handle is not None:
                    handle.finish(self, exc)
                raise
            if handle is not None:
                handle.finish(self, None)

    return plait_start


def _is_running(engine: Any) -> bool:
    try:
        return bool(engine.state.is_running())
    except Exception:  # no run was created (Prefect failed early): nothing to track
        return False


def outcome(engine: Any) -> tuple[Any, BaseException | None]:
    """Return ``(return value, exception)`` of a finished run; either may be missing (``NotSet``).

    :returns: the value the function returned (a ``ResultRecord`` unwrapped) or ``NotSet``, and
        the exception it raised or ``None``.
    """
    from prefect.utilities.annotations import NotSet

    value = getattr(engine, "_return_value", NotSet)
    if value is not NotSet and type(value).__name__ == "ResultRecord":
        value = value.result
    raised = getattr(engine, "_raised", NotSet)
    return value, (raised if isinstance(raised, BaseException) else None)


def not_set() -> Any:
    """Return Prefect's ``NotSet`` sentinel."""
    from prefect.utilities.annotations import NotSet

    return NotSet
