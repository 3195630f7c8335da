"""The dashboard's JSON API under ``/api/``: what the pages read and the one thing they write.

Every list is paginated and answered from the store's index (:mod:`plait.ui.queries`); a single
version, run, diff or lineage graph goes through the public ``plait`` API. FastAPI documents
all of it at ``/api/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

import plait
from plait.errors import InvalidInputError
from plait.formats.names import check_name
from plait.tracking.drawing import to_svg
from plait.tracking.layout import DrawOptions, layout
from plait.ui import details, queries
from plait.ui.common import store_of, version_of
from plait.ui.notes import render_markdown
from plait.ui.tables import hf_dataset_files, hf_splits

router = APIRouter(prefix="/api")

#: The most paths each side of a diff lists.
MAX_DIFF_PATHS = 1000


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
    data["usage"] = details.usage(version)
    data["splits"] = hf_splits(version)
    data["dataset"] = hf_dataset_files(version, "") is not None
    return data


def _run_brief(run: plait.RunRecord) -> dict[str, Any]:
    return {"id": run.id, "name": run.name, "kind": run.kind, "status": run.status}


@router.get("/store", summary="Describe the store")
def store_info(request: Request) -> dict[str, Any]:
    """Return the store's URL, id, hash algorithm, counts, and whether editing is allowed."""
    store = store_of(request)
    return {"url": store.url, "id": store.id, "algorithm": store.algorithm, "allow_edit": request.app.state.allow_edit,
            "auth": request.app.state.auth.mode,
            "counts": queries.counts(store), "types": queries.types(store), "run_kinds": queries.run_kinds(store),
            "tags": queries.tags(store)}


@router.get("/artifacts", summary="List artifacts")
def list_artifacts(request: Request, type: str | None = Query(None, max_length=128), q: str | None = Query(None, max_length=128),
                   tag: str | None = Query(None, max_length=128), offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """Return one page of artifacts by name: version count, latest version, size, last update
    (``tag``: only those with a version carrying it)."""
    return queries.artifacts(store_of(request), type=type, q=q, tag=tag, offset=offset, limit=limit).to_dict()


@router.get("/artifacts/{name}/versions", summary="List an artifact's versions")
def list_versions(request: Request, name: str, tag: str | None = Query(None, max_length=128), offset: int = 0,
                  limit: int = 50) -> dict[str, Any]:
    """Return one page of an artifact's versions, newest first: aliases, tags, size, files, producer run
    (``tag``: only those carrying it)."""
    store = store_of(request)
    page = queries.versions(store, check_name(name), tag=tag, offset=offset, limit=limit)
    if page.total == 0 and not tag:
        store.versions(name)  # raises NotFoundError listing what exists
    return page.to_dict()


@router.get("/tags", summary="List tags")
def list_tags(request: Request, name: str | None = Query(None, max_length=128)) -> list[dict[str, Any]]:
    """Return every tag on a live version (of artifact ``name``, if given) with how many versions carry it."""
    return queries.tags(store_of(request), check_name(name) if name else None)


@router.get("/find", summary="Search versions")
def find_versions(request: Request, type: list[str] = Query([]), name: list[str] = Query([]), tag: list[str] = Query([]),
                  alias: list[str] = Query([]), where: list[str] = Query([]),
                  created_after: str | None = Query(None, max_length=64), created_before: str | None = Query(None, max_length=64),
                  sort: list[str] = Query([]), offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """Return one page of the versions matching every filter, as ``plait find --json`` does
    (``?tag=eu&where=metrics.accuracy>0.9&sort=-metrics.accuracy``)."""
    queries.check_page(offset, limit)
    found = store_of(request).find(type=type, name=name, tag=tag, alias=alias, where=where, created_after=created_after,
                                 created_before=created_before, sort=sort, offset=offset, limit=limit)
    return found.to_dict()


@router.get("/versions/{name}/{number}", summary="Show a version")
def show_version(request: Request, name: str, number: int) -> dict[str, Any]:
    """Return a version: metadata, description (raw and rendered), aliases, producer and consumers."""
    return version_dict(version_of(request, name, number))


@router.get("/versions/{name}/{number}/history", summary="A version's history")
def version_history(request: Request, name: str, number: int) -> list[dict[str, Any]]:
    """Return every change to the version — logged, aliases, notes, metadata — oldest first, with who made it."""
    return [{"time": h.time, "kind": h.kind, "version": h.version, "user": h.user, "run": h.run, "detail": h.detail,
             "text": str(h)} for h in version_of(request, name, number).history()]


@router.get("/versions/{name}/{number}/diff", summary="Diff against another version")
def version_diff(request: Request, name: str, number: int, against: str = Query(..., max_length=300)) -> dict[str, Any]:
    """Compare another version (``against``, any spec: ``name:v2``, ``v2``, ``name:best``) with this one."""
    new = version_of(request, name, number)
    spec = f"{name}:{against}" if ":" not in against and against[:1] == "v" and against[1:].isdigit() else against
    result = plait.diff(store_of(request).get(spec), new).to_dict()
    for key in ("added", "removed", "modified"):
        result[f"{key}_count"] = len(result[key])
        result[key] = result[key][:MAX_DIFF_PATHS]
    return result


@router.get("/runs", summary="List runs")
def list_runs(request: Request, name: str | None = Query(None, max_length=128), kind: str | None = Query(None, max_length=128),
              offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """Return one page of runs, newest first, with their input and output counts."""
    return queries.runs(store_of(request), name=name, kind=kind, offset=offset, limit=limit).to_dict()


@router.get("/runs/{run_id}", summary="Show a run")
def show_run(request: Request, run_id: str) -> dict[str, Any]:
    """Return a run: config, environment, inputs, outputs, parent and child runs (an id prefix is enough)."""
    if not run_id.isalnum() or len(run_id) > 26:
        raise InvalidInputError(f"{run_id!r} is not a run id (26 letters and digits, or a prefix)")
    run = store_of(request).get_run(run_id)
    data = run.to_dict()
    data["inputs"] = [_brief(v) for v in run.inputs]
    data["outputs"] = [_brief(v) for v in run.outputs]
    data["children"] = [_run_brief(c) for c in run.children]
    data.update(details.run_details(run))
    return data


@router.get("/artifacts/{name}/aliases", summary="An artifact's aliases and their history")
def artifact_aliases(request: Request, name: str) -> dict[str, Any]:
    """Return where each alias of an artifact points now, and every move, newest first, with who made it."""
    store = store_of(request)
    if queries.versions(store, check_name(name), limit=1).total == 0:
        store.versions(name)  # raises NotFoundError listing what exists
    current = queries.aliases(store, name)
    return {"name": name, "aliases": current, "history": details.alias_history(store, name)}


@router.get("/compare", summary="Compare versions side by side")
def compare_versions(request: Request, specs: list[str] = Query(..., max_length=details.MAX_COMPARE)) -> dict[str, Any]:
    """Put up to eight versions (any specs) side by side: facts, metadata, and their producing runs' config and metrics."""
    if not 1 <= len(specs) <= details.MAX_COMPARE:
        raise InvalidInputError(f"compare 1 to {details.MAX_COMPARE} versions, not {len(specs)}")
    store = store_of(request)
    return details.compare([store.get(s[:300]) for s in specs])


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
    graph = store_of(request).lineage(spec, direction=direction, depth=depth, producers=producers)
    data = graph.to_dict()
    for node in data["nodes"]:  # to_dict's version nodes carry the artifact type in "type"
        node["node"] = "run" if node["id"].startswith("run:") and node["id"][4:] in graph.runs else "version"
        if node["node"] == "version":
            node["deleted"] = graph.versions[node["id"]].deleted
    return data


@router.get("/lineage/drawing", summary="The lineage graph, laid out and drawn")
def lineage_drawing(request: Request, spec: str = Query(..., max_length=300), direction: str = "both",
                    depth: int | None = Query(None, ge=0, le=1000), producers: str = "preferred", show_deleted: bool = False,
                    show_failed: bool = False, collapsed: str = Query("", max_length=4000), cluster: bool = True) -> dict[str, Any]:
    """Return the graph around a version or run laid out left to right, as SVG with every node's position.

    ``collapsed`` lists the flow runs (ids, comma-separated, or ``*`` for all) drawn as one node.
    Deleted versions and failed runs are hidden unless ``show_deleted``/``show_failed``; the
    answer says how many were hidden. ``producers`` is as for ``/api/lineage``.
    """
    graph = store_of(request).lineage(spec, direction=direction, depth=depth, producers=producers)
    options = DrawOptions(show_deleted=show_deleted, show_failed=show_failed, cluster=cluster,
                          collapsed=tuple(c for c in collapsed.split(",") if c))
    lay = layout(graph, options)
    return {"root": lay.root, "nodes": len(lay.nodes), "crossings": lay.crossings, "hidden": lay.hidden,
            "groups": [g.run_id for g in lay.groups], "collapsed": [n[6:] for n in lay.nodes if n.startswith("group:")],
            "width": lay.width, "height": lay.height, "svg": to_svg(lay)}
