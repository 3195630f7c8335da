"""File previews: the head of a text, CSV or JSON file, or an image, read only through the store.

A preview names a file by its entry path inside a version; the path is looked up in the
version's manifest, and the bytes come from the store's blobs, verified against their digest.
Nothing from the request ever becomes a filesystem path, and a reference entry (data that stays
at its source, outside the store) is not previewed.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from plait.errors import InvalidPathError

if TYPE_CHECKING:
    from plait.formats.manifest import Entry
    from plait.tracking.nodes import ArtifactVersion

#: How much of a text file a preview shows.
TEXT_HEAD_BYTES = 64 << 10
#: How many rows of a CSV file a preview shows.
CSV_HEAD_ROWS = 50
#: The largest image the dashboard serves (a preview, not a download).
MAX_IMAGE_BYTES = 10 << 20

TEXT_EXTENSIONS = {
    ".txt", ".md", ".rst", ".log", ".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh", ".html", ".xml",
    ".tsv", ".jsonl", ".ndjson", ".js", ".css", ".sql", ".r", ".ipynb",
}
#: Raster formats only: SVG can carry scripts, so it is previewed as text instead.
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/gif": (b"GIF87a", b"GIF89a"),
          "image/webp": (b"RIFF",)}


def kind_of(path: str) -> str:
    """Return how a file is previewed: ``csv``, ``json``, ``image``, ``text`` or ``binary``."""
    ext = posixpath.splitext(path.lower())[1]
    if ext in (".csv", ".tsv"):
        return "csv"
    if ext == ".json":
        return "json"
    if ext in IMAGE_TYPES:
        return "image"
    if ext in TEXT_EXTENSIONS or ext == ".svg" or "." not in posixpath.basename(path):
        return "text"
    return "binary"


def _entry(version: ArtifactVersion, path: str) -> Entry:
    entry = version.entry(path)
    if entry.ref is not None:
        raise InvalidPathError(
            f"{version.spec}/{path} is a reference to {entry.ref.uri}; its bytes are not in the store, so it has no preview",
            path=path,
        )
    return entry


def _head(version: ArtifactVersion, entry: Entry, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes from the start of a file: its first blob only, verified."""
    blobs = entry.blobs
    if not blobs:
        return b"", False
    data = version.store.blobs.read(blobs[0][0])
    return data[:limit], entry.size > limit


def preview(version: ArtifactVersion, path: str) -> dict[str, Any]:
    """Return a JSON-ready preview of one file of a version.

    :returns: ``{"path", "size", "kind", "truncated", …}`` plus ``text`` (text, JSON),
        ``rows`` (CSV) or ``url`` (image).
    :raises NotFoundError: for a path that is not in the version.
    :raises InvalidPathError: for a reference entry.
    :raises IntegrityError: if the stored bytes are damaged.
    """
    entry = _entry(version, path)
    kind = kind_of(path)
    out: dict[str, Any] = {"path": entry.path, "size": entry.size, "kind": kind, "truncated": False}
    if kind == "image":
        out["url"] = f"/api/versions/{version.name}/{version.number}/raw?path={quote(entry.path, safe='')}"
        out["too_large"] = entry.size > MAX_IMAGE_BYTES
        return out
    if kind == "binary":
        data, _ = _head(version, entry, 4096)
        if b"\x00" in data or _undecodable(data):
            return out
        kind = out["kind"] = "text"
    data, truncated = _head(version, entry, TEXT_HEAD_BYTES)
    text = data.decode("utf-8", errors="replace")
    if truncated:  # the cut may split a character or a line: drop the partial last line
        text = text.rsplit("\n", 1)[0]
    out["truncated"] = truncated
    if kind == "csv":
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
        rows = list(_csv_rows(text, delimiter))
        out["rows"] = rows[:CSV_HEAD_ROWS]
        out["truncated"] = truncated or len(rows) > CSV_HEAD_ROWS
        return out
    if kind == "json" and not truncated:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)[:TEXT_HEAD_BYTES]
        except ValueError:
            pass
    out["text"] = text
    return out


def _undecodable(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(data) - 4  # a character cut at the end of the head is fine
    return False


def _csv_rows(text: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > CSV_HEAD_ROWS:
                break
    except csv.Error:
        pass
    return rows


def image_bytes(version: ArtifactVersion, path: str) -> tuple[bytes, str]:
    """Return the bytes and media type of an image file of a version, checked by its magic bytes.

    :raises InvalidPathError: if the file is not a PNG, JPEG, GIF or WebP image, or too large.
    :raises NotFoundError: for a path that is not in the version.
    """
    entry = _entry(version, path)
    media = IMAGE_TYPES.get(posixpath.splitext(path.lower())[1])
    if media is None:
        raise InvalidPathError(f"{path!r} is not a PNG, JPEG, GIF or WebP image; only images are served raw", path=path)
    if entry.size > MAX_IMAGE_BYTES:
        raise InvalidPathError(f"{path!r} is {entry.size} bytes, larger than the {MAX_IMAGE_BYTES}-byte preview limit; "
                               f"download it with `plait get {version.spec}`", path=path)
    data = version.read_bytes(entry.path)
    if not data.startswith(_MAGIC[media]):
        raise InvalidPathError(f"{path!r} does not hold {media} data; it is not served", path=path)
    return data, media
