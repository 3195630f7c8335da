"""Sort a task's parameters and return values into run parameters and artifacts.

A value is *plain* if it is JSON (str, numbers, bools, ``None``, lists and dicts of them): small
plain values become run parameters, large ones a ``value.json`` artifact (the same value gives
the same bytes, so a task receiving another task's large list is linked to it). Paths, bytes,
:class:`plait.Artifact` drafts and :class:`plait.ArtifactVersion` are artifacts; any other object
is offered to the conversion hooks (HF datasets, torch modules, ...) and recorded by its type
name when no plugin takes it. A dict, tuple or list holding anything but plain values is split
one level: ``split.train``, ``split.0``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import plait

PARAM, JSON, ARTIFACT, OBJECT = "param", "json", "artifact", "object"
#: The file name of a large plain value stored as an artifact.
JSON_FILE = "value.json"

_ARTIFACT_TYPES: tuple[type, ...] = (os.PathLike, bytes, bytearray, memoryview)
_SCALARS = (str, int, float, bool, type(None))


def to_json(value: Any) -> str | None:
    """Return the canonical JSON text of a plain value, or ``None`` if it is not plain."""
    if isinstance(value, _SCALARS):
        pass
    elif not isinstance(value, (list, tuple, dict)):
        return None
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


def classify(value: Any, max_param_bytes: int) -> tuple[str, Any]:
    """Return ``(kind, value)``: ``param`` (small plain), ``json`` (large plain), ``artifact`` or ``object``.

    For ``param`` and ``json`` the value is returned as JSON data (tuples become lists).
    """
    if isinstance(value, _ARTIFACT_TYPES) or _is_plait(value):
        return ARTIFACT, value
    text = to_json(value)
    if text is None:
        return OBJECT, value
    data = json.loads(text) if isinstance(value, (tuple, list, dict)) else value
    return (PARAM if len(text.encode()) <= max_param_bytes else JSON), data


def split(key: str, value: Any) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` pairs: the items of a container holding non-plain values, else the value.

    :param key: the name of the whole value (a parameter name or a task name).
    """
    # only plain containers are split: a dict or tuple subclass (a DatasetDict, a named tuple of
    # results) is one object for the conversion hooks
    if type(value) is dict and value and all(isinstance(k, (str, int)) for k in value):
        if any(to_json(v) is None for v in value.values()):
            for k, v in value.items():
                yield f"{key}.{k}", v
            return
    elif type(value) in (tuple, list) and value and any(to_json(v) is None for v in value):
        for i, v in enumerate(value):
            yield f"{key}.{i}", v
        return
    yield key, value


def json_artifact(name: str, data: Any, type: str | None = None) -> plait.Artifact:
    """Return a draft holding one plain value as ``value.json``."""
    return plait.Artifact(name, type=type or "result").add_json(data, JSON_FILE)


def type_label(value: Any) -> str:
    """Return ``<module.Class>`` for an object recorded by its type only."""
    return f"<{plait.type_name(value)}>"


def _is_plait(value: Any) -> bool:
    return isinstance(value, (plait.Artifact, plait.ArtifactVersion))
