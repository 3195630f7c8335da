"""Turn Prefect flow and task runs into plait runs: parameters, used inputs, logged outputs.

:func:`plait.integrations.prefect.runners.on_start` decides which runs are tracked and makes
these trackers. A run is tracked when its flow or task was given to ``track`` or when it runs
inside a tracked flow: the options travel in a context variable, so they reach task threads,
asyncio tasks and subflows the way Prefect's own run context does, and another process with
the flow run's context (see ``runners.py``). Nothing here ever raises into Prefect: a failure
becomes a :class:`PrefectTrackingWarning` and the user's flow goes on.
"""

from __future__ import annotations

import contextvars
import json
import logging
import warnings
from abc import ABC, abstractmethod
from typing import Any

import plait
from plait.integrations.prefect import _engine, handoffs
from plait.integrations.prefect.options import TrackOptions, safe_name
from plait.integrations.prefect.values import JSON, OBJECT, PARAM, classify, json_artifact, split, type_label

FLOW_KIND, TASK_KIND = "prefect.flow", "prefect.task"
#: The attribute ``track`` sets on a flow or task (and on its function, so ``with_options`` keeps it).
OPTIONS_ATTR = "__plait_track__"

_options: contextvars.ContextVar[TrackOptions | None] = contextvars.ContextVar("plait_prefect_options", default=None)


class PrefectTrackingWarning(plait.PlaitWarning):
    """Warned when plait could not record part of a Prefect run; the flow itself is unaffected."""


def options_of(obj: Any) -> TrackOptions | None:
    """Return the options ``track`` attached to a flow or task (or its function), if any."""
    found = getattr(obj, OPTIONS_ATTR, None)
    if found is None:
        found = getattr(getattr(obj, "fn", None), OPTIONS_ATTR, None)
    return found if isinstance(found, TrackOptions) else None


def current_options() -> TrackOptions | None:
    """Return the options of the tracked flow this code runs in, or ``None``."""
    return _options.get()


def _warn(when: str, engine: Any, exc: BaseException) -> None:
    what = getattr(getattr(engine, "task", None) or getattr(engine, "flow", None), "name", "?")
    warn(f"plait could not record the {when} of Prefect run {what!r} ({type(exc).__name__}: {exc}); "
         "the flow is unaffected. Check the store (`plait runs`), or report this message.")


def warn(message: str) -> None:
    """Warn with a :class:`PrefectTrackingWarning`; log it instead where warnings are errors."""
    try:
        warnings.warn(message, PrefectTrackingWarning, stacklevel=3)
    except Exception:  # warnings turned into errors (-W error) must still not break the flow
        logging.getLogger("plait.prefect").warning(message)


class _Tracker(ABC):
    """One plait run for one Prefect flow or task run, active while the Prefect run runs.

    :param engine: Prefect's run engine, its run ``Running``.
    :param options: how the flow is tracked.
    :param parent: the id of the plait run this one runs in (default: the active run).
    :param store: the store to record to (default: the options' store, else the active run's).
    """

    kind = ""

    def __init__(self, engine: Any, options: TrackOptions, *, parent: str | None = None,
                 store: plait.Store | None = None) -> None:
        self.options = options
        self.owner = self._owner(engine)
        self.inputs: dict[str, str] = {}
        config, self._artifacts = self._parameters(dict(engine.parameters or {}))
        self._context = plait.run(safe_name(self.owner), kind=self.kind, config=config,
                                  store=store if store is not None else plait.current_store(options.store),
                                  parent=parent, info={"prefect": self._info(engine)})
        self.run: plait.Run = self._context.__enter__()
        self._token = _options.set(options)
        self._use_inputs()

    @abstractmethod
    def _owner(self, engine: Any) -> str:
        """Return the flow or task name this run is recorded under."""

    @abstractmethod
    def _info(self, engine: Any) -> dict[str, Any]:
        """Return the Prefect facts recorded at start (run ids, name, retries, ...)."""

    def _parameters(self, parameters: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        """Split parameters into JSON config and ``(key, value)`` pairs to record as used versions."""
        config: dict[str, Any] = {}
        artifacts: list[tuple[str, Any]] = []
        for param, value in parameters.items():
            if not self.options.wants_param(self.owner, param):
                continue
            for key, item in split(param, value):
                kind, data = classify(item, self.options.max_param_bytes)
                if kind == PARAM:
                    config[key] = data
                else:
                    artifacts.append((key, data if kind == JSON else item))
                    if kind == OBJECT:
                        config[key] = type_label(item)
        return config, artifacts

    def _use_inputs(self) -> None:
        """Record the versions a run receives (tasks only; a flow's data is used by its tasks)."""

    def finish(self, engine: Any, escaped: BaseException | None) -> None:
        """Record outputs and the end of the run, then make the outer run active again."""
        try:
            state = engine.state
            value, raised = _engine.outcome(engine)
            error = escaped or raised
            failed = error is not None or not state.is_completed()
            summary: dict[str, Any] = {"prefect": self._final(engine, state)}
            if not failed:
                summary.update(self._outputs(value, cached=state.name == "Cached"))
            if self.inputs:
                summary["inputs"] = self.inputs
            if failed and error is None:
                error = RuntimeError(f"Prefect state {state.name}: {state.message or ''}".strip())
            self.run.finish(error if failed else None, summary=summary)
        except Exception as exc:
            _warn("end", engine, exc)
        finally:
            self._leave(engine)

    def _leave(self, engine: Any) -> None:
        try:
            _options.reset(self._token)
            self._context.__exit__(None, None, None)
        except Exception as exc:  # e.g. a run ended in another context than it started in
            _warn("end", engine, exc)

    @abstractmethod
    def _final(self, engine: Any, state: Any) -> dict[str, Any]:
        """Return the Prefect facts recorded at the end (state, attempts, cached)."""

    def _outputs(self, value: Any, *, cached: bool) -> dict[str, Any]:
        return {}


class FlowTracker(_Tracker):
    """A Prefect flow run as a ``prefect.flow`` run; its tasks and subflows become its children.

    Its parameters are recorded as config only: the paths and versions it receives are used by
    the tasks that read them, so the lineage edges are exactly the tasks' (a flow that reads data
    outside any task can ``plait.use`` it itself: the flow's plait run is active in its body).
    """

    kind = FLOW_KIND

    def _owner(self, engine: Any) -> str:
        return str(engine.flow.name)

    def _info(self, engine: Any) -> dict[str, Any]:
        run = engine.flow_run
        return {
            "flow_run_id": str(run.id), "flow_run_name": run.name, "flow_name": engine.flow.name,
            "deployment_id": str(run.deployment_id) if run.deployment_id else None,
            "retries": engine.flow.retries or 0, "tags": sorted(run.tags or []),
            "parent_task_run_id": str(run.parent_task_run_id) if run.parent_task_run_id else None,
        }

    def _parameters(self, parameters: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        config, artifacts = super()._parameters(parameters)
        for key, value in artifacts:  # recorded, not used: see the class docstring
            config.setdefault(key, _describe(value))
        return config, []

    def _final(self, engine: Any, state: Any) -> dict[str, Any]:
        return {"state": state.name, "attempts": engine.flow_run.run_count}


class TaskTracker(_Tracker):
    """A Prefect task run as a ``prefect.task`` run: inputs used, outputs logged, attempts counted."""

    kind = TASK_KIND

    def _owner(self, engine: Any) -> str:
        return str(engine.task.name)

    def _info(self, engine: Any) -> dict[str, Any]:
        run = engine.task_run
        self._task_inputs = handoffs.task_inputs(run)
        return {
            "task_run_id": str(run.id), "task_run_name": run.name, "task_name": engine.task.name,
            "task_key": run.task_key, "flow_run_id": str(run.flow_run_id) if run.flow_run_id else None,
            "retries": engine.task.retries or 0, "tags": sorted(run.tags or []),
            "task_inputs": self._task_inputs,
        }

    def _use_inputs(self) -> None:
        """Record the versions the task receives; a value another task returned links the version
        that task logged (``upstream=``: the plait runs of its Prefect ``task_inputs``)."""
        handoffs.remember(self.run.info["prefect"]["task_run_id"], self.run.id)
        for key, value in self._artifacts:
            try:
                obj = json_artifact(safe_name(f"{self.owner}.{key}"), value) if not _is_object(value) else value
                upstream = self._task_inputs.get(key.split(".", 1)[0], [])
                version = self.run.use(obj, upstream=handoffs.plait_runs(self.run.store, upstream) if upstream else ())
            except plait.ConversionError:
                continue  # already in config by its type name
            except Exception as exc:
                _warn(f"input {key!r}", _Named(self.owner), exc)
                continue
            self.inputs[key] = version.spec

    def _final(self, engine: Any, state: Any) -> dict[str, Any]:
        return {"state": state.name, "attempts": engine.task_run.run_count, "cached": state.name == "Cached"}

    def _outputs(self, value: Any, *, cached: bool) -> dict[str, Any]:
        """Log (or, for a cached run, use) every output worth an artifact; keep small values."""
        if _is_state(value):
            return {}
        specs: dict[str, str] = {}
        values: dict[str, Any] = {}
        options = self.options
        for key, item in split(self.owner, value):
            if not options.wants_output(key):
                continue
            kind, data = classify(item, options.max_param_bytes)
            if kind == PARAM:
                values[key] = data
                continue
            # a plait.Artifact draft keeps the name it was given unless the options rename it
            name = item.name if isinstance(item, plait.Artifact) and key not in options.names else options.name_for(key)
            if isinstance(item, plait.Artifact) and key not in options.names:
                name = item.name  # a draft the task built names itself
            obj = json_artifact(name, data, options.types.get(key)) if kind == JSON else item
            try:
                if cached:  # served from Prefect's cache: link to the versions with these bytes
                    version = self.run.use(obj, name=name, type=options.types.get(key))
                else:
                    version = self.run.log(obj, name=name, type=options.types.get(key),
                                           aliases=options.aliases_for(key, name))
            except plait.ConversionError:
                values[key] = type_label(item)
                continue
            except Exception as exc:
                _warn(f"output {key!r}", _Named(self.owner), exc)
                continue
            specs[key] = version.spec
        out: dict[str, Any] = {}
        if specs:
            out["outputs"] = specs
        if values:
            out["values"] = values
        return out


class _Named:
    """Stands in for an engine in warnings about one input or output."""

    def __init__(self, name: str) -> None:
        self.task = self
        self.name = name


def _is_object(value: Any) -> bool:
    from plait.integrations.prefect.values import to_json

    return to_json(value) is None


def _is_state(value: Any) -> bool:
    return type(value).__module__.startswith("prefect.") and hasattr(value, "is_completed")


def _describe(value: Any) -> Any:
    if isinstance(value, plait.ArtifactVersion):
        return value.spec
    if hasattr(value, "__fspath__"):
        import os

        return os.fspath(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, plait.Artifact):
        return f"<plait.Artifact {value.name}>"
    return type_label(value) if _is_object(value) else f"<JSON, {len(json.dumps(value))} bytes>"
