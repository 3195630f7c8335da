"""The dashboard's JSON API for a version's files: listings, folders, previews, tables and images.

Every file is named by its entry path inside the version and read through the store (verified),
never as a filesystem path; see :mod:`plait.ui.preview`, :mod:`plait.ui.files` and
:mod:`plait.ui.tables`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from plait.errors import InvalidInputError
from plait.ui import files as F
from plait.ui import tables
from plait.ui.common import version_of
from plait.ui.preview import image_bytes, kind_of, preview

router = APIRouter(prefix="/api")

#: The most files one page of a version's file list holds.
MAX_FILES = 500
_PATH = Query("", max_length=4096)


@router.get("/versions/{name}/{number}/files", summary="List a version's files")
def list_files(request: Request, name: str, number: int, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    """Return one page of a version's files with their size, digest and preview kind."""
    if not 1 <= limit <= MAX_FILES or offset < 0:
        raise InvalidInputError(f"offset must be 0 or more and limit between 1 and {MAX_FILES}")
    entries = version_of(request, name, number).files()
    items = [{"path": e.path, "size": e.size, "digest": e.digest, "kind": "reference" if e.ref else kind_of(e.path),
              "reference": e.ref.uri if e.ref else None} for e in entries[offset:offset + limit]]
    return {"items": items, "total": len(entries), "offset": offset, "limit": limit}


@router.get("/versions/{name}/{number}/tree", summary="List one folder of a version")
def list_folder(request: Request, name: str, number: int, path: str = _PATH, offset: int = 0, limit: int = 200) -> dict[str, Any]:
    """Return one page of a folder's sub-folders (file count, size) and files, and whether it is a dataset or holds images."""
    return F.folder(version_of(request, name, number), path, offset=offset, limit=limit)


@router.get("/versions/{name}/{number}/gallery", summary="The images below a folder")
def image_gallery(request: Request, name: str, number: int, path: str = _PATH, offset: int = 0, limit: int = 48) -> dict[str, Any]:
    """Return one page of the PNG, JPEG, GIF and WebP images below a folder, with the URL of each."""
    return F.gallery(version_of(request, name, number), path, offset=offset, limit=limit)


@router.get("/versions/{name}/{number}/table", summary="One page of a table")
def table_page(request: Request, name: str, number: int, path: str = _PATH, offset: int = 0, limit: int = 50,
               column_offset: int = 0, columns: int = 20) -> dict[str, Any]:
    """Return one page of rows of a Parquet, Arrow or CSV file, or of a saved Hugging Face dataset folder.

    Only the page is read: column names and types, rows as short text, the total when known,
    and how many bytes were fetched from the store for it.
    """
    return tables.page(version_of(request, name, number), path, offset=offset, limit=limit,
                       column_offset=column_offset, columns=columns)


@router.get("/versions/{name}/{number}/preview", summary="Preview one file")
def preview_file(request: Request, name: str, number: int, path: str = Query(..., max_length=4096)) -> dict[str, Any]:
    """Return the head of a text, CSV or JSON file, or the URL of an image, read from the store."""
    return preview(version_of(request, name, number), path)


@router.get("/versions/{name}/{number}/raw", summary="Serve an image file", response_class=Response)
def raw_image(request: Request, name: str, number: int, path: str = Query(..., max_length=4096)) -> Response:
    """Return the bytes of a PNG, JPEG, GIF or WebP file of the version (nothing else is served raw)."""
    data, media = image_bytes(version_of(request, name, number), path)
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
