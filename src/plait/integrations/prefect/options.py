"""What ``track(flow, ...)`` records: parameter and output filters, names, aliases, types, sizes."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import plait

#: Plain values (str, numbers, small lists and dicts) whose JSON is at most this many bytes are
#: recorded as run parameters; larger ones are stored as a ``value.json`` artifact.
DEFAULT_MAX_PARAM_BYTES = 1024

_VERSION_LIKE = re.compile(r"v(0|[1-9][0-9]*)")


class TrackError(plait.PlaitError, TypeError):
    """Raised when ``track`` is given something that is not a Prefect flow or task, or bad options.

    :ivar name: the offending option or object, as text.
    """

    exit_code = 2

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class TrackOptions:
    """How a tracked flow (and every task and subflow inside it) is recorded.

    Keys name a parameter as ``param`` (any task) or ``task.param`` (one task), and an output as
    ``task`` (a single return value) or ``task.key`` (an item of a returned dict, tuple or list).

    :ivar store: the plait store (a :class:`plait.Store` or URL); ``None`` for the active run's
        store, else the default store.
    :ivar params: record only these parameters (``None``: all).
    :ivar skip_params: never record these parameters.
    :ivar outputs: record only these outputs (``None``: all).
    :ivar skip_outputs: never record these outputs.
    :ivar names: artifact name per output key (default: the key, e.g. ``prepare`` or ``split.train``;
        a returned :class:`plait.Artifact` draft keeps its own name).
    :ivar aliases: aliases to set per output key or artifact name.
    :ivar types: artifact type per output key (default: chosen by the conversion, ``dataset`` for paths).
    :ivar max_param_bytes: plain values up to this JSON size are recorded as parameters.
    """

    store: Any = None
    params: frozenset[str] | None = None
    skip_params: frozenset[str] = frozenset()
    outputs: frozenset[str] | None = None
    skip_outputs: frozenset[str] = frozenset()
    names: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    max_param_bytes: int = DEFAULT_MAX_PARAM_BYTES

    def wants_param(self, owner: str, param: str) -> bool:
        """Tell whether parameter ``param`` of task or flow ``owner`` is recorded."""
        keys = (param, f"{owner}.{param}")
        if any(k in self.skip_params for k in keys):
            return False
        return self.params is None or any(k in self.params for k in keys)

    def wants_output(self, key: str) -> bool:
        """Tell whether the output ``key`` (``task`` or ``task.key``) is recorded."""
        owner = key.split(".", 1)[0]
        if key in self.skip_outputs or owner in self.skip_outputs:
            return False
        return self.outputs is None or key in self.outputs or owner in self.outputs

    def name_for(self, key: str) -> str:
        """Return the artifact name of output ``key``."""
        return self.names.get(key) or safe_name(key)

    def aliases_for(self, key: str, name: str) -> tuple[str, ...]:
        """Return the aliases to set on output ``key`` logged as ``name``."""
        return tuple(self.aliases.get(key, ())) or tuple(self.aliases.get(name, ()))


def make_options(*, store: Any = None, params: Iterable[str] | None = None, skip_params: Iterable[str] = (),
                 outputs: Iterable[str] | None = None, skip_outputs: Iterable[str] = (),
                 names: Mapping[str, str] | None = None, aliases: Mapping[str, Iterable[str] | str] | None = None,
                 types: Mapping[str, str] | None = None, max_param_bytes: int = DEFAULT_MAX_PARAM_BYTES) -> TrackOptions:
    """Check the options given to ``track`` and return them frozen.

    :raises TrackError: for a filter that is a bare string, a negative size or a bad store.
    :raises InvalidNameError: for an artifact name, alias or type that breaks the naming rules.
    """
    if store is not None and not isinstance(store, (str, plait.Store)):
        raise TrackError(f"store must be a plait.Store or a URL, not {type(store).__name__}", name="store")
    if isinstance(max_param_bytes, bool) or not isinstance(max_param_bytes, int) or max_param_bytes < 0:
        raise TrackError(f"max_param_bytes must be a whole number of bytes (0 or more), not {max_param_bytes!r}",
                         name="max_param_bytes")
    names = dict(names or {})
    for key, name in names.items():
        plait.Artifact(name)  # raises InvalidNameError with the rule spelled out
    for key, kind in (types or {}).items():
        plait.Artifact("x", type=kind)
    fixed_aliases = {}
    for key, value in (aliases or {}).items():
        values = (value,) if isinstance(value, str) else tuple(value)
        fixed_aliases[key] = tuple(_check_alias(a) for a in values)
    return TrackOptions(
        store=store, params=_keys(params, "params"), skip_params=_keys(skip_params, "skip_params") or frozenset(),
        outputs=_keys(outputs, "outputs"), skip_outputs=_keys(skip_outputs, "skip_outputs") or frozenset(),
        names=names, aliases=fixed_aliases, types=dict(types or {}), max_param_bytes=max_param_bytes,
    )


def _keys(value: Collection[str] | Iterable[str] | None, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TrackError(f"{what} takes a list of names, not the string {value!r}: write {what}=[{value!r}]", name=what)
    keys = frozenset(value)
    bad = [k for k in keys if not isinstance(k, str) or not k]
    if bad:
        raise TrackError(f"{what} takes parameter or output names (non-empty strings), got {bad[0]!r}", name=what)
    return keys


def _check_alias(alias: Any) -> str:
    plait.Artifact(alias if isinstance(alias, str) else str(alias))
    if not isinstance(alias, str) or _VERSION_LIKE.fullmatch(alias) or alias == "latest":
        raise plait.InvalidNameError(
            f"alias {alias!r} cannot be set: 'latest' and version numbers like 'v3' are kept by plait; pick another name",
            name=str(alias),
        )
    return alias


def safe_name(text: str) -> str:
    """Turn a task name or output key into a valid artifact or run name (``my task`` -> ``my-task``)."""
    return plait.safe_name(text, "prefect")
