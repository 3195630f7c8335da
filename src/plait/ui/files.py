"""A version's files as folders: one folder's children, and the images below a folder (the gallery)."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from plait.errors import InvalidInputError, NotFoundError
from plait.ui.preview import IMAGE_TYPES, MAX_IMAGE_BYTES, kind_of
from plait.ui.tables import hf_dataset_files, is_table

if TYPE_CHECKING:
    from plait.formats.manifest import Entry
    from plait.tracking.nodes import ArtifactVersion

MAX_ITEMS = 500


def _prefix(folder: str) -> str:
    folder = folder.strip("/")
    return f"{folder}/" if folder else ""


def _kind(entry: Entry) -> str:
    if entry.ref is not None:
        return "reference"
    return "table" if is_table(entry.path) else kind_of(entry.path)


def folder(version: ArtifactVersion, path: str = "", *, offset: int = 0, limit: int = 200) -> dict[str, Any]:
    """Return one page of what a folder of the version holds: sub-folders first, then files.

    :param path: the folder (``""`` for the top).
    :returns: ``{"path", "items", "total", "offset", "limit", "dataset", "images"}``; each item has
        ``name``, ``path``, ``type`` (``folder`` or ``file``), ``size``, and for a folder its
        ``files``, for a file its ``digest``, ``kind`` and ``reference``. ``dataset`` tells whether
        the folder holds a saved Hugging Face dataset, ``images`` how many images lie below it.
    :raises NotFoundError: for a folder the version does not have.
    """
    if offset < 0 or not 1 <= limit <= MAX_ITEMS:
        raise InvalidInputError(f"offset must be 0 or more and limit between 1 and {MAX_ITEMS}")
    prefix = _prefix(path)
    folders: dict[str, list[int]] = {}
    files: list[dict[str, Any]] = []
    images = 0
    for entry in version.files():
        if not entry.path.startswith(prefix):
            continue
        rest = entry.path[len(prefix):]
        if posixpath.splitext(rest.lower())[1] in IMAGE_TYPES and entry.ref is None:
            images += 1
        head, _, tail = rest.partition("/")
        if tail:
            stats = folders.setdefault(head, [0, 0])
            stats[0] += 1
            stats[1] += entry.size
        else:
            files.append({"name": rest, "path": entry.path, "type": "file", "size": entry.size, "digest": entry.digest,
                          "kind": _kind(entry), "reference": entry.ref.uri if entry.ref else None})
    if prefix and not folders and not files:
        raise NotFoundError(f"{version.spec} has no folder {path!r}", name=path)
    items = [{"name": name, "path": prefix + name, "type": "folder", "files": n, "size": size,
              "dataset": hf_dataset_files(version, prefix + name) is not None}
             for name, (n, size) in sorted(folders.items())] + files
    return {"path": prefix.rstrip("/"), "items": items[offset:offset + limit], "total": len(items), "offset": offset,
            "limit": limit, "dataset": hf_dataset_files(version, prefix) is not None, "images": images}


def gallery(version: ArtifactVersion, path: str = "", *, offset: int = 0, limit: int = 48) -> dict[str, Any]:
    """Return one page of the images below a folder, with the URL each is served at.

    :returns: ``{"path", "items": [{"path", "size", "url", "too_large"}], "total", "offset", "limit"}``.
    """
    if offset < 0 or not 1 <= limit <= MAX_ITEMS:
        raise InvalidInputError(f"offset must be 0 or more and limit between 1 and {MAX_ITEMS}")
    prefix = _prefix(path)
    found = [e for e in version.files() if e.path.startswith(prefix) and e.ref is None
             and posixpath.splitext(e.path.lower())[1] in IMAGE_TYPES]
    base = f"/api/versions/{version.name}/{version.number}/raw?path="
    items = [{"path": e.path, "size": e.size, "url": base + quote(e.path, safe=""), "too_large": e.size > MAX_IMAGE_BYTES}
             for e in found[offset:offset + limit]]
    return {"path": prefix.rstrip("/"), "items": items, "total": len(found), "offset": offset, "limit": limit}
