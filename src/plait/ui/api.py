"""The dashboard's JSON API under ``/api/``: what the pages read and the one thing they write.

Every list is paginated and answered from the store's index (:mod:`plait.ui.queries`); a single
version, run, diff or lineage graph goes through the public ``plait`` API. FastAPI documents
all of it at ``/api/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

import plait
from plait.errors import InvalidInputError, ReadOnlyError
from plait.formats.names import check_name
from plait.ui import queries
from plait.ui.notes import check_note, render_markdown
from plait.ui.preview import image_bytes as _image_bytes
from plait.ui.preview import kind_of, preview

router = APIRouter(prefix="/api")

#: The most files one page of a version's file list holds.
MAX_FILES = 500
#: The most paths each side of a diff lists.
MAX_DIFF_PATHS = 1000


class NoteIn(BaseModel):
    """A new description for a version."""

    description: str = Field(description="Markdown text; rendered sanitised in the page.")


def _store(request: Request) -> plait.Store:
    return request.app.state.store


def _version(request: Request, name: str, number: int) -> plait.ArtifactVersion:
    if number < 0:
        raise InvalidInputError(f"a version number is 0 or more, not {number}")
    return _store(request).get(f"{name}:v{number}")


def version_dict(version: plait.ArtifactVersion) -> dict[str, Any]:
    """Return a version as the pages show it: its fields, rendered notes, producer and consumers.

    :param version: the version.
    :returns: :meth:`ArtifactVersion.to_dict` plus ``number``, ``description_html``, ``run`` (the
        preferred producer), ``producers`` (every run that produced it, oldest first) and ``used_by``.
    """
    producer = version.produced_by
    data = version.to_dict()
    data["number"] = version.number
    data["description_html"] = render_markdown(version.description)
    data["run"] = _run_brief(producer) if producer else None
    data["producers"] = [_run_brief(r) for r in version.producers]
    data["used_by"] = [_run_brief(r) for r in version.used_by]
    return data


def _run_brief(run: plait.RunRecord) -> dict[str, Any]:
    return {"id": run.id, "name": run.name, "kind": run.kind, "status": run.status}


@router.get("/store", summary="Describe the store")
def store_info(request: Request) -> dict[str, Any]:
    """Return the store's URL, id, hash algorithm, counts, and whether editing is allowed."""
    store = _store(request)
    return {"url": store.url, "id": store.id, "algorithm": store.algorithm, "allow_edit": request.app.state.allow_edit,
            "counts": queries.counts(store), "types": queries.types(store), "run_kinds": queries.run_kinds(store)}


@router.get("/artifacts", summary="List artifacts")
def list_artifacts(request: Request, type: str | None = Query(None, max_length=128), q: str | None = Query(None, max_length=128),
                   offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """Return one page of artifacts by name: version count, latest version, size, last update."""
    return queries.artifacts(_store(request), type=type, q=q, offset=offset, limit=limit).to_dict()


@router.get("/artifacts/{name}/versions", summary="List an artifact's versions")
def list_versions(request: Request, name: str, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """Return one page of an artifact's versions, newest first: aliases, size, files, producer run."""
    store = _store(request)
    page = queries.versions(store, check_name(name), offset=offset, limit=limit)
    if page.total == 0:
        store.versions(name)  # raises NotFoundError listing what exists
    return page.to_dict()


@router.get("/find", summary="Search versions")
def find_versions(request: Request, type: list[str] = Query([]), name: list[str] = Query([]), tag: list[str] = Query([]),
                  alias: list[str] = Query([]), where: list[str] = Query([]),
                  created_after: str | None = Query(None, max_length=64), created_before: str | None = Query(None, max_length=64),
                  sort: list[str] = Query([]), offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """Return one page of the versions matching every filter, as ``plait find --json`` does
    (``?tag=eu&where=metrics.accuracy>0.9&sort=-metrics.accuracy``)."""
    queries.check_page(offset, limit)
    found = _store(request).find(type=type, name=name, tag=tag, alias=alias, where=where, created_after=created_after,
                                 created_before=created_before, sort=sort, offset=offset, limit=limit)
    return found.to_dict()


@router.get("/versions/{name}/{number}", summary="Show a version")
def show_version(request: Request, name: str, number: int) -> dict[str, Any]:
    """Return a version: metadata, description (raw and rendered), aliases, producer and consumers."""
    return version_dict(_version(request, name, number))


@router.get("/versions/{name}/{number}/files", summary="List a version's files")
def list_files(request: Request, name: str, number: int, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    """Return one page of a version's files with their size, digest and preview kind."""
    if not 1 <= limit <= MAX_FILES or offset < 0:
        raise InvalidInputError(f"offset must be 0 or more and limit between 1 and {MAX_FILES}")
    entries = _version(request, name, number).files()
    items = [{"path": e.path, "size": e.size, "digest": e.digest, "kind": "reference" if e.ref else kind_of(e.path),
              "reference": e.ref.uri if e.ref else None} for e in entries[offset:offset + limit]]
    return {"items": items, "total": len(entries), "offset": offset, "limit": limit}


@router.get("/versions/{name}/{number}/preview", summary="Preview one file")
def preview_file(request: Request, name: str, number: int, path: str = Query(..., max_length=4096)) -> dict[str, Any]:
    """Return the head of a text, CSV or JSON file, or the URL of an image, read from the store."""
    return preview(_version(request, name, number), path)


@router.get("/versions/{name}/{number}/raw", summary="Serve an image file", response_class=Response)
def raw_image(request: Request, name: str, number: int, path: str = Query(..., max_length=4096)) -> Response:
    """Return the bytes of a PNG, JPEG, GIF or WebP file of the version (nothing else is served raw)."""
    data, media = _image_bytes(_version(request, name, number), path)
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/versions/{name}/{number}/history", summary="A version's history")
def version_history(request: Request, name: str, number: int) -> list[dict[str, Any]]:
    """Return every change to the version — logged, aliases, notes, metadata — oldest first, with who made it."""
    return [{"time": h.time, "kind": h.kind, "version": h.version, "user": h.user, "run": h.run, "detail": h.detail,
             "text": str(h)} for h in _version(request, name, number).history()]


@router.get("/versions/{name}/{number}/diff", summary="Diff against another version")
def version_diff(request: Request, name: str, number: int, against: str = Query(..., max_length=300)) -> dict[str, Any]:
    """Compare another version (``against``, any spec: ``name:v2``, ``v2``, ``name:best``) with this one."""
    new = _version(request, name, number)
    spec = f"{name}:{against}" if ":" not in against and against[:1] == "v" and against[1:].isdigit() else against
    result = plait.diff(_store(request).get(spec), new).to_dict()
    for key in ("added", "removed", "modified"):
        result[f"{key}_count"] = len(result[key])
        result[key] = result[key][:MAX_DIFF_PATHS]
    return result


@router.put("/versions/{name}/{number}/description", summary="Edit a version's notes")
def edit_description(request: Request, name: str, number: int, body: NoteIn) -> dict[str, Any]:
    """Set the version's description (Markdown); recorded as an event with its author.

    Refused with 403 unless the dashboard was started with ``--allow-edit``.
    """
    if not request.app.state.allow_edit:
        raise ReadOnlyError("editing is off: restart the dashboard with `plait ui --allow-edit` to change notes")
    version = _version(request, name, number)
    return version_dict(version.update(description=check_note(body.description)))


@router.get("/runs", summary="List runs")
def list_runs(request: Request, name: str | None = Query(None, max_length=128), kind: str | None = Query(None, max_length=128),
              offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """Return one page of runs, newest first, with their input and output counts."""
    return queries.runs(_store(request), name=name, kind=kind, offset=offset, limit=limit).to_dict()


@router.get("/runs/{run_id}", summary="Show a run")
def show_run(request: Request, run_id: str) -> dict[str, Any]:
    """Return a run: config, environment, inputs, outputs, parent and child runs (an id prefix is enough)."""
    if not run_id.isalnum() or len(run_id) > 26:
        raise InvalidInputError(f"{run_id!r} is not a run id (26 letters and digits, or a prefix)")
    run = _store(request).get_run(run_id)
    data = run.to_dict()
    data["inputs"] = [_brief(v) for v in run.inputs]
    data["outputs"] = [_brief(v) for v in run.outputs]
    data["children"] = [_run_brief(c) for c in run.children]
    return data


def _brief(version: plait.ArtifactVersion) -> dict[str, Any]:
    return {"spec": version.spec, "name": version.name, "number": version.number, "type": version.type,
            "aliases": list(version.aliases), "size": version.size}


@router.get("/lineage", summary="The lineage graph of a version or run")
def lineage(request: Request, spec: str = Query(..., max_length=300), direction: str = "both",
            depth: int | None = Query(None, ge=0, le=1000), producers: str = "preferred") -> dict[str, Any]:
    """Return the graph around a version (``name:v3``) or a run (``run:<id>``): nodes and edges.

    Each node's ``node`` is ``version`` or ``run``. Edges are ``used`` (version → run),
    ``produced`` (run → version), ``parent`` (run → child run) and ``previous`` (an implicit
    run's segment → its next one). ``producers=all`` follows every run that produced a version,
    not only the preferred one.
    """
    graph = _store(request).lineage(spec, direction=direction, depth=depth, producers=producers)
    data = graph.to_dict()
    for node in data["nodes"]:  # to_dict's version nodes carry the artifact type in "type"
        node["node"] = "run" if node["id"].startswith("run:") and node["id"][4:] in graph.runs else "version"
    return data
