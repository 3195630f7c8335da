"""plait: version the data ML pipelines read and write, and trace how every model was built.

The public API. Integrations and plugins use only what is exported here.
"""

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
from plait.core.version import ArtifactVersion, HistoryEntry
from plait.plugins import hookimpl

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
    "UnsupportedStoreError",
    "active_run",
    "diff",
    "get",
    "hookimpl",
    "lineage",
    "load",
    "log",
    "run",
    "use",
]
