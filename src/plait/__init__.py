"""plait: version the data ML pipelines read and write, and trace how every model was built.

The public API. Integrations and plugins use only what is exported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.api import diff, get, lineage, load, log, use
    from plait.core.artifact import Artifact
    from plait.core.diff import Diff
    from plait.core.errors import (
        ConflictError,
        ConversionError,
        CorruptRecordError,
        FileChangedError,
        IntegrityError,
        InvalidMetadataError,
        InvalidNameError,
        InvalidPathError,
        LineageError,
        MissingExtraError,
        NotFoundError,
        PlaitError,
        SourceError,
        StoreError,
        UnsupportedStoreError,
    )
    from plait.core.lineage import LineageGraph
    from plait.core.manifest import Entry, Manifest, Reference
    from plait.core.run import Run, active_run, run
    from plait.core.store import Store
    from plait.core.sync import SyncReport, sync
    from plait.core.version import ArtifactVersion, HistoryEntry
    from plait.plugins import hookimpl

# Exports are imported on first use (PEP 562): an eager facade pulled in pydantic, fsspec and
# the whole core, ~1.1 s cold / ~300 ms warm for `import plait` (and so for `plait --help`);
# lazily it is ~2 ms. Keep this map in step with the imports above and `__all__` below.
_EXPORTS = {
    "Artifact": "plait.core.artifact",
    "ArtifactVersion": "plait.core.version",
    "ConflictError": "plait.core.errors",
    "ConversionError": "plait.core.errors",
    "CorruptRecordError": "plait.core.errors",
    "Diff": "plait.core.diff",
    "Entry": "plait.core.manifest",
    "FileChangedError": "plait.core.errors",
    "HistoryEntry": "plait.core.version",
    "IntegrityError": "plait.core.errors",
    "InvalidMetadataError": "plait.core.errors",
    "InvalidNameError": "plait.core.errors",
    "InvalidPathError": "plait.core.errors",
    "LineageError": "plait.core.errors",
    "LineageGraph": "plait.core.lineage",
    "Manifest": "plait.core.manifest",
    "MissingExtraError": "plait.core.errors",
    "NotFoundError": "plait.core.errors",
    "PlaitError": "plait.core.errors",
    "Reference": "plait.core.manifest",
    "Run": "plait.core.run",
    "SourceError": "plait.core.errors",
    "Store": "plait.core.store",
    "StoreError": "plait.core.errors",
    "SyncReport": "plait.core.sync",
    "UnsupportedStoreError": "plait.core.errors",
    "active_run": "plait.core.run",
    "diff": "plait.api",
    "get": "plait.api",
    "hookimpl": "plait.plugins",
    "lineage": "plait.api",
    "load": "plait.api",
    "log": "plait.api",
    "run": "plait.core.run",
    "sync": "plait.core.sync",
    "use": "plait.api",
}


def __getattr__(name: str) -> Any:
    """Import an exported name on first access (keeps ``import plait`` fast)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'plait' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the module's names, the lazy exports included."""
    return sorted(set(globals()) | set(_EXPORTS))


__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "ArtifactVersion",
    "ConflictError",
    "ConversionError",
    "CorruptRecordError",
    "Diff",
    "Entry",
    "FileChangedError",
    "HistoryEntry",
    "IntegrityError",
    "InvalidMetadataError",
    "InvalidNameError",
    "InvalidPathError",
    "LineageError",
    "LineageGraph",
    "Manifest",
    "MissingExtraError",
    "NotFoundError",
    "PlaitError",
    "Reference",
    "Run",
    "SourceError",
    "Store",
    "StoreError",
    "SyncReport",
    "UnsupportedStoreError",
    "active_run",
    "diff",
    "get",
    "hookimpl",
    "lineage",
    "load",
    "log",
    "run",
    "sync",
    "use",
]
