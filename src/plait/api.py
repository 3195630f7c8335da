"""The module-level API: ``plait.log``, ``plait.get``, ``plait.use``, … on the default store.

Each function works on the store of the active run if there is one, else on ``store`` if
given, else on the default store (see :func:`plait.core.config.default_store_url`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from plait.core.diff import Diff
from plait.core.diff import diff as _diff
from plait.core.errors import ConversionError
from plait.core.lineage import LineageGraph
from plait.core.run import active_run, run_for, type_name
from plait.core.store import Store
from plait.core.version import ArtifactVersion

_default_stores: dict[str, Store] = {}


def _store(store: Store | str | None) -> Store:
    if isinstance(store, Store):
        return store
    if store is None:
        run = active_run()
        if run is not None:
            return run.store
    from plait.core.config import default_store_url

    url = os.fspath(store) if store is not None else default_store_url()
    if url not in _default_stores:
        _default_stores[url] = Store(url)
    return _default_stores[url]


def log(obj: Any, name: str | None = None, type: str | None = None, *, aliases: Iterable[str] = (),
        description: str | None = None, metadata: Mapping[str, Any] | None = None, store: Store | str | None = None) -> ArtifactVersion:
    """Log a path, bytes, an :class:`plait.Artifact` or any object a plugin converts.

    The version is produced by the active run, or the process's implicit run. See
    :meth:`plait.Run.log` for every parameter.
    """
    return run_for(_store(store)).log(obj, name=name, type=type, aliases=aliases, description=description, metadata=metadata)


def use(obj: Any, *, name: str | None = None, type: str | None = None, store: Store | str | None = None) -> ArtifactVersion:
    """Record that the active run (or the implicit run) uses a version; return it.

    See :meth:`plait.Run.use`.
    """
    return run_for(_store(store)).use(obj, name=name, type=type)


def get(spec: str, *, store: Store | str | None = None) -> ArtifactVersion:
    """Return the version a spec names (``images``, ``images:v3``, ``images:latest``, ``images:best``).

    Reading a version does not record a use; :func:`use` does.

    :raises NotFoundError: listing what exists.
    """
    return _store(store).get(spec)


def load(spec: str, as_type: Any = None, *, store: Store | str | None = None) -> Any:
    """Use a version and turn it into a Python object through the conversion plugins.

    :param as_type: the wanted type (default: a local path to the downloaded files).
    :raises ConversionError: if no plugin makes that type.
    """
    from plait.plugins import convert

    version = get(spec, store=store)
    obj = convert("plait_artifact_to_object", version=version, as_type=as_type)
    if obj is None:
        raise ConversionError(f"no plugin turns {version.spec} ({version.type}) into a {type_name(as_type)}")
    use(version, store=version.store)  # recorded only once the object exists: a failed load uses nothing
    return obj


def diff(old: str | ArtifactVersion, new: str | ArtifactVersion, *, store: Store | str | None = None) -> Diff:
    """Compare two versions path by path: added, removed and modified files with sizes."""
    s = _store(store)
    a = old if isinstance(old, ArtifactVersion) else s.get(old)
    b = new if isinstance(new, ArtifactVersion) else s.get(new)
    return _diff(a, b)


def lineage(spec: str, direction: str = "upstream", depth: int | None = None, *, store: Store | str | None = None) -> LineageGraph:
    """Return the lineage graph of a version or run.

    :param direction: ``upstream``, ``downstream`` or ``both``.
    :param depth: how many runs away to go (``None``: all).
    """
    return _store(store).lineage(spec, direction=direction, depth=depth)
