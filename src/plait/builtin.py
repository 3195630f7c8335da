"""The built-in conversions: paths, bytes, drafts and versions. Registered ``trylast``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from plait.errors import SourceError
from plait.formats.artifact import Artifact
from plait.formats.names import safe_name
from plait.hookspecs import hookimpl
from plait.tracking.nodes import ArtifactVersion


def name_for_path(path: str) -> str:
    """Derive an artifact name from a path: its base name made valid (see :func:`plait.safe_name`)."""
    return safe_name(os.path.basename(os.path.normpath(path)) or "data")


@hookimpl(trylast=True)
def plait_object_to_artifact(obj: Any, name: str | None, type: str | None, store: Any) -> Artifact | None:
    """Turn a path (file or folder), bytes or a draft into a draft."""
    if isinstance(obj, Artifact):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        path = os.fspath(obj)
        if os.path.isdir(path):
            return Artifact(name or name_for_path(path), type=type or "dataset").add_dir(path)
        if os.path.isfile(path):
            return Artifact(name or name_for_path(path), type=type or "dataset").add_file(path)
        raise SourceError(f"{path} does not exist: give an existing file or folder, or a spec like 'name:v3'", path=path)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        draft_name = name or "data"
        return Artifact(draft_name, type=type or "result").add_bytes(bytes(obj), draft_name)
    return None


@hookimpl(trylast=True)
def plait_artifact_to_object(version: ArtifactVersion, as_type: Any) -> Any:
    """Return the downloaded folder (or the single file) for ``None``, ``str`` and ``Path``."""
    if as_type in (None, str, Path, "path"):
        folder = version.download()
        files = version.files()
        target = os.path.join(folder, *files[0].path.split("/")) if len(files) == 1 else folder
        return Path(target) if as_type is Path else target
    if as_type is bytes:
        files = version.files()
        if len(files) == 1:
            return version.read_bytes(files[0].path)
    return None
