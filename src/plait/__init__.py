"""plait: version the data ML pipelines read and write, and trace how every model was built.

The public API: integrations and plugins use only what is exported here. The package is built
in layers, each importing only the layers before it (``tests/test_architecture.py`` checks)::

    0 plait.errors, plait.base     errors and warnings; ids, paths, URLs, user settings, threads, progress
    1 plait.storage                bytes: backends (local, memory, fsspec), blobs, digests and chunks, reference sources
    2 plait.formats                names, manifests, version and event records, drafts
    3 plait.index                  the SQLite index: schema, typed rows, every SQL query
    4 plait.store                  a store's records: versions, events, aliases, settings, publish, download, references
    5 plait.tracking               versions and runs as objects, the live run, the lineage graph
    6 plait.ops                    whole-store operations: gc, verify, compact, sync, diff
    7 plait.hookspecs, builtin, plugins   the hooks, the built-in conversions, the plugin manager
    8 plait.api                    Store and the module functions (log, use, get, run, …)
    9 plait (this module)          the facade
   10 plait.integrations, cli, ui, demo   Prefect, Lightning, Hugging Face; the command; the dashboard
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.api.carry import carry
    from plait.api.functions import (
        active_run,
        diff,
        find,
        finish,
        get,
        lineage,
        load,
        log,
        run,
        upsert,
        use,
    )
    from plait.api.store import (
        Store,
        current_store,
    )
    from plait.base.describe import type_name
    from plait.errors import (
        AccessError,
        CarryWarning,
        ConflictError,
        ConversionError,
        CorruptRecordError,
        FileChangedError,
        IntegrityError,
        InvalidInputError,
        InvalidMetadataError,
        InvalidNameError,
        InvalidPathError,
        MissingExtraError,
        NotFoundError,
        PlaitError,
        PlaitWarning,
        PluginWarning,
        ProtectedAliasError,
        ReadOnlyError,
        ReferenceChangedError,
        ReferenceRefusedError,
        SettingsError,
        SourceError,
        StoreError,
        StoreUnreachableError,
        UnsupportedStoreError,
    )
    from plait.formats.artifact import Artifact
    from plait.formats.manifest import (
        Entry,
        Manifest,
    )
    from plait.formats.names import safe_name
    from plait.formats.reference import Reference
    from plait.hookspecs import hookimpl
    from plait.ops.diff import Diff
    from plait.ops.sync import (
        SyncReport,
        sync,
    )
    from plait.tracking.lineage import LineageGraph
    from plait.tracking.nodes import (
        ArtifactVersion,
        HistoryEntry,
        RunRecord,
    )
    from plait.tracking.run import Run

#: Where each export lives. Exports are imported on first use (PEP 562), so ``import plait``
#: loads none of pydantic, fsspec or the core. Keep in step with the imports above and ``__all__``.
_EXPORTS = {
    "AccessError": "plait.errors",
    "Artifact": "plait.formats.artifact",
    "ArtifactVersion": "plait.tracking.nodes",
    "CarryWarning": "plait.errors",
    "ConflictError": "plait.errors",
    "ConversionError": "plait.errors",
    "CorruptRecordError": "plait.errors",
    "Diff": "plait.ops.diff",
    "Entry": "plait.formats.manifest",
    "FileChangedError": "plait.errors",
    "HistoryEntry": "plait.tracking.nodes",
    "IntegrityError": "plait.errors",
    "InvalidInputError": "plait.errors",
    "InvalidMetadataError": "plait.errors",
    "InvalidNameError": "plait.errors",
    "InvalidPathError": "plait.errors",
    "LineageGraph": "plait.tracking.lineage",
    "Manifest": "plait.formats.manifest",
    "MissingExtraError": "plait.errors",
    "NotFoundError": "plait.errors",
    "PlaitError": "plait.errors",
    "PlaitWarning": "plait.errors",
    "PluginWarning": "plait.errors",
    "ProtectedAliasError": "plait.errors",
    "ReadOnlyError": "plait.errors",
    "Reference": "plait.formats.reference",
    "ReferenceChangedError": "plait.errors",
    "ReferenceRefusedError": "plait.errors",
    "Run": "plait.tracking.run",
    "RunRecord": "plait.tracking.nodes",
    "SettingsError": "plait.errors",
    "SourceError": "plait.errors",
    "Store": "plait.api.store",
    "StoreError": "plait.errors",
    "StoreUnreachableError": "plait.errors",
    "SyncReport": "plait.ops.sync",
    "UnsupportedStoreError": "plait.errors",
    "active_run": "plait.api.functions",
    "carry": "plait.api.carry",
    "current_store": "plait.api.store",
    "diff": "plait.api.functions",
    "find": "plait.api.functions",
    "finish": "plait.api.functions",
    "get": "plait.api.functions",
    "hookimpl": "plait.hookspecs",
    "lineage": "plait.api.functions",
    "load": "plait.api.functions",
    "log": "plait.api.functions",
    "run": "plait.api.functions",
    "safe_name": "plait.formats.names",
    "sync": "plait.ops.sync",
    "type_name": "plait.base.describe",
    "upsert": "plait.api.functions",
    "use": "plait.api.functions",
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
    "AccessError",
    "Artifact",
    "ArtifactVersion",
    "CarryWarning",
    "ConflictError",
    "ConversionError",
    "CorruptRecordError",
    "Diff",
    "Entry",
    "FileChangedError",
    "HistoryEntry",
    "IntegrityError",
    "InvalidInputError",
    "InvalidMetadataError",
    "InvalidNameError",
    "InvalidPathError",
    "LineageGraph",
    "Manifest",
    "MissingExtraError",
    "NotFoundError",
    "PlaitError",
    "PlaitWarning",
    "PluginWarning",
    "ProtectedAliasError",
    "ReadOnlyError",
    "Reference",
    "ReferenceChangedError",
    "ReferenceRefusedError",
    "Run",
    "RunRecord",
    "SettingsError",
    "SourceError",
    "Store",
    "StoreError",
    "StoreUnreachableError",
    "SyncReport",
    "UnsupportedStoreError",
    "active_run",
    "carry",
    "current_store",
    "diff",
    "find",
    "finish",
    "get",
    "hookimpl",
    "lineage",
    "load",
    "log",
    "run",
    "safe_name",
    "sync",
    "type_name",
    "upsert",
    "use",
]
