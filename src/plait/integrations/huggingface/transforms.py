"""Follow transforms: which fingerprint was derived from which, by what function and arguments.

``datasets`` gives every transform's output a new fingerprint computed by
``datasets.fingerprint.update_fingerprint(old, transform, args)`` — called by the
``@fingerprint_transform`` decorator (``filter``, ``select``, ``sort``, ``shuffle``, ``rename_column``,
…), by ``Dataset.map`` and by ``concatenate_datasets``. It keeps no history, so plait wraps that one
function (once, when the integration is first used) and remembers ``new -> (old, step)`` for this
process. Tracking a dataset then walks back from its fingerprint to fingerprints that are known
versions ("origins": tracked, loaded, or read by :func:`load_dataset`), and the steps in between
are the transform chain.

Only transforms applied after the integration was first used in the process are seen.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: Steps remembered per process; the oldest are forgotten first (a step is a few hundred bytes).
MAX_STEPS = 100_000
#: Longest argument text recorded.
MAX_TEXT = 200
#: Fingerprints ``datasets`` generates are 16 hex digits; ``concatenate_datasets`` joins its
#: inputs' fingerprints, so its step has several parents.
FINGERPRINT_WIDTH = 16


@dataclass(frozen=True)
class Step:
    """One transform: what it was called and with which arguments, and what it was applied to.

    :ivar transform: ``map``, ``filter``, ``select``, ``concatenate_datasets``, …
    :ivar args: the arguments ``datasets`` hashed, as JSON (functions by qualified name).
    :ivar parents: fingerprints of the input dataset(s).
    :ivar fingerprint: fingerprint of the output.
    """

    transform: str
    args: dict[str, Any]
    parents: tuple[str, ...]
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        """Return the step as JSON for the transform run's config."""
        return {"transform": self.transform, "args": self.args, "input": list(self.parents), "output": self.fingerprint}


@dataclass
class _Registry:
    steps: OrderedDict[str, Step] = field(default_factory=OrderedDict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    folders: dict[tuple[str, str], tuple[str, list[str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_registry = _Registry()
_local = threading.local()
_install_lock = threading.Lock()


def install() -> None:
    """Wrap ``update_fingerprint`` in ``datasets`` so that transforms are recorded (idempotent)."""
    import datasets.arrow_dataset as arrow_dataset
    import datasets.fingerprint as fingerprint

    with _install_lock:
        original = fingerprint.update_fingerprint
        if getattr(original, "_plait_recording", False):
            return

        def update_fingerprint(old: Any, transform: Any, transform_args: Any) -> Any:
            new = original(old, transform, transform_args)
            if not getattr(_local, "paused", False):
                try:
                    _record(old, transform, transform_args, new)
                except Exception:  # noqa: BLE001 - recording lineage must never break a user's transform
                    pass
            return new

        update_fingerprint._plait_recording = True  # type: ignore[attr-defined]
        update_fingerprint.__wrapped__ = original  # type: ignore[attr-defined]
        fingerprint.update_fingerprint = update_fingerprint
        arrow_dataset.update_fingerprint = update_fingerprint  # imported by name there (map, concatenate)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Do not record transforms in this thread while the block runs (plait's own reads)."""
    before = getattr(_local, "paused", False)
    _local.paused = True
    try:
        yield
    finally:
        _local.paused = before


def _record(old: Any, transform: Any, args: Any, new: Any) -> None:
    if not isinstance(old, str) or not isinstance(new, str) or old == new:
        return
    name = transform_name(transform)
    parents = _split_parents(old) if name == "concatenate_datasets" else (old,)
    step = Step(name, describe_args(args), parents, new)
    with _registry.lock:
        _registry.steps[new] = step
        _registry.steps.move_to_end(new)
        while len(_registry.steps) > MAX_STEPS:
            _registry.steps.popitem(last=False)


def transform_name(transform: Any) -> str:
    """Return a short name for what ``datasets`` passes as the transform.

    ``datasets.arrow_dataset.Dataset.filter@2.0.1`` becomes ``filter``, ``Dataset._map_single``
    becomes ``map`` and the concatenation function ``concatenate_datasets``.
    """
    if callable(transform):
        text = getattr(transform, "__qualname__", None) or repr(transform)
    else:
        text = str(transform)
    text = text.split("@", 1)[0].rsplit(".", 1)[-1]
    if text == "_map_single":
        return "map"
    if "concatenate" in text:
        return "concatenate_datasets"
    return text.lstrip("_") or text


def _split_parents(joined: str) -> tuple[str, ...]:
    known = {**{fp: None for fp in _registry.steps}, **{fp: None for _, fp in _registry.origins}}
    parts: list[str] = []
    rest = joined
    while rest:
        match = next((fp for fp in known if fp and rest.startswith(fp)), None)
        width = len(match) if match else FINGERPRINT_WIDTH
        parts.append(rest[:width])
        rest = rest[width:]
    return tuple(parts)


def describe_args(args: Any) -> dict[str, Any]:
    """Return the arguments of a transform as JSON: functions by name, long values shortened."""
    if not isinstance(args, dict):
        return {}
    return {str(k): describe_value(v) for k, v in sorted(args.items(), key=lambda kv: str(kv[0]))
            if k not in ("fingerprint_name", "new_fingerprint") and v is not None}


def describe_value(value: Any) -> Any:
    """Return one argument as JSON: a function as ``module.qualname``, a long list as its length."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', None) or '?'}.{value.__qualname__}"
    if isinstance(value, range):
        return f"range({value.start}, {value.stop}" + (f", {value.step})" if value.step != 1 else ")")
    if isinstance(value, (list, tuple)):
        if len(value) <= 20 and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
            return [describe_value(v) for v in value]
        return f"<{type(value).__name__} of {len(value)}>"
    if isinstance(value, dict):
        if len(value) <= 20:
            return {str(k): describe_value(v) for k, v in value.items()}
        return f"<dict of {len(value)}>"
    text = repr(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


# -- origins: fingerprints that are known versions ------------------------------------------------


def remember_origin(store_url: str, fingerprint: str, spec: str, folder: str | None = None,
                    paths: list[str] | None = None) -> None:
    """Remember that a dataset with ``fingerprint`` is the version ``spec`` in a store.

    :param folder: where the version's files are, for a dataset that was loaded from them.
    :param paths: the version's entry paths below ``folder``.
    """
    with _registry.lock:
        _registry.origins[(store_url, fingerprint)] = spec
        if folder is not None and paths is not None:
            _registry.folders[(store_url, fingerprint)] = (folder, list(paths))


def origin(store_url: str, fingerprint: str) -> str | None:
    """Return the spec a fingerprint is known as in a store (this process), or ``None``."""
    return _registry.origins.get((store_url, fingerprint))


def origin_folder(store_url: str, fingerprint: str) -> tuple[str, list[str]] | None:
    """Return ``(folder, entry paths)`` a dataset with this fingerprint was loaded from, or ``None``."""
    return _registry.folders.get((store_url, fingerprint))


def derivation(fingerprints: list[str], lookup: Callable[[str], str | None]) -> tuple[list[str], list[Step]]:
    """Walk back from fingerprints to the versions they were derived from.

    :param fingerprints: the fingerprints of the dataset being tracked (one per split).
    :param lookup: returns the spec a fingerprint is known as, or ``None``.
    :returns: ``(source specs, steps)``; steps are ordered inputs first. Both are empty when no
        recorded step leads back to a known version.
    """
    sources: list[str] = []
    steps: list[Step] = []
    seen: set[str] = set()
    for start in fingerprints:
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:
            fp, expanded = stack.pop()
            step = _registry.steps.get(fp)
            if expanded:
                steps.append(step)  # type: ignore[arg-type]
                continue
            if fp in seen or step is None:
                continue
            seen.add(fp)
            stack.append((fp, True))
            for parent in reversed(step.parents):
                spec = lookup(parent)
                if spec is not None:
                    if spec not in sources:
                        sources.append(spec)
                else:
                    stack.append((parent, False))
    return (sources, steps) if sources else ([], [])
