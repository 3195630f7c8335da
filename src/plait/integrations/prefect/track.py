"""``track``: the one decorator that records a Prefect flow's (or task's) runs in plait."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from plait.integrations.prefect.options import DEFAULT_MAX_PARAM_BYTES, TrackError, make_options

T = TypeVar("T")


def track(target: T | None = None, /, *, store: Any = None, params: Iterable[str] | None = None,
          skip_params: Iterable[str] = (), outputs: Iterable[str] | None = None, skip_outputs: Iterable[str] = (),
          names: Mapping[str, str] | None = None, aliases: Mapping[str, Iterable[str] | str] | None = None,
          types: Mapping[str, str] | None = None, max_param_bytes: int = DEFAULT_MAX_PARAM_BYTES) -> Any:
    """Record every run of a Prefect flow (with all its tasks and subflows) or of one task in plait.

    Put it above ``@flow`` (or ``@task``); it returns the same object, marked. Use it bare
    (``@track``), with options (``@track(names={"train": "model"})``) or as a call
    (``track(pipeline, store="s3://bucket/plait")``). A flow run becomes a ``prefect.flow`` run,
    each task run a ``prefect.task`` child run whose inputs are used and outputs logged.

    :param target: a Prefect ``Flow`` or ``Task``; omit it to get a decorator.
    :param store: a :class:`plait.Store` or URL (default: the active run's store, else the default store).
    :param params: record only these parameters (``"lr"`` or ``"train.lr"``).
    :param skip_params: never record these parameters.
    :param outputs: record only these outputs (``"train"`` or ``"split.test"``).
    :param skip_outputs: never record these outputs.
    :param names: artifact name per output (default: ``<task name>``, ``<task name>.<key>`` for items
        of a returned dict, tuple or list).
    :param aliases: aliases to set on new versions, per output key or artifact name.
    :param types: artifact type per output (``{"train": "model"}``).
    :param max_param_bytes: plain values (str, numbers, small lists/dicts) up to this JSON size are
        recorded as parameters; larger ones become ``value.json`` artifacts.
    :returns: ``target``, now tracked; or a decorator when ``target`` is omitted.
    :raises MissingExtraError: if Prefect is not installed.
    :raises TrackError: if ``target`` is not a Prefect flow or task, or for malformed options.
    :raises InvalidNameError: for an artifact name, type or alias that breaks the naming rules.
    """
    options = make_options(store=store, params=params, skip_params=skip_params, outputs=outputs,
                           skip_outputs=skip_outputs, names=names, aliases=aliases, types=types,
                           max_param_bytes=max_param_bytes)
    if target is None:
        return lambda obj: _mark(obj, options)
    return _mark(target, options)


def _mark(target: Any, options: Any) -> Any:
    Flow, Task = _prefect_types()
    if not isinstance(target, (Flow, Task)):
        hint = ("put @track above @flow or @task" if callable(target)
                else "pass the object made by @flow or @task")
        raise TrackError(f"track() takes a Prefect flow or task, not {type(target).__name__}: {hint}",
                         name=type(target).__name__)
    from plait.integrations.prefect import _engine
    from plait.integrations.prefect.runners import on_start
    from plait.integrations.prefect.tracker import OPTIONS_ATTR

    _engine.install(on_start)
    setattr(target, OPTIONS_ATTR, options)
    try:  # on the function too, so that flow.with_options(...) stays tracked
        setattr(target.fn, OPTIONS_ATTR, options)
    except (AttributeError, TypeError):
        pass
    return target


def _prefect_types() -> tuple[type, type]:
    try:
        from prefect import Flow, Task
    except ImportError as exc:
        import plait

        raise plait.MissingExtraError(
            f"plait's Prefect integration needs Prefect 3 ({exc}): pip install 'plait[prefect]'",
            extra="prefect",
        ) from None
    return Flow, Task
