"""Paginated lists for the dashboard: one page and the total, as JSON-ready dicts.

Every list the dashboard shows can be long (a store with tens of thousands of versions); the
index answers each page touching only its rows (:mod:`plait.index.pages`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.errors import InvalidInputError
from plait.formats.names import check_tag
from plait.index import pages
from plait.index import tags as T
from plait.index import versions as V

if TYPE_CHECKING:
    from plait.store.base import BaseStore as Store

#: The largest page a client may ask for.
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    """One page of a list.

    :ivar items: the rows of this page, as JSON-ready dicts.
    :ivar total: how many rows the whole list has.
    :ivar offset: index of the first row of this page.
    :ivar limit: the page size asked for.
    """

    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    def to_dict(self) -> dict[str, Any]:
        """Return the page as JSON-ready data."""
        return {"items": self.items, "total": self.total, "offset": self.offset, "limit": self.limit}


def check_page(offset: int, limit: int) -> None:
    """Refuse a page outside the allowed range.

    :raises InvalidInputError: for a negative offset or a limit outside ``1..MAX_LIMIT``.
    """
    if offset < 0:
        raise InvalidInputError(f"offset must be 0 or more, not {offset}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")


def artifacts(store: Store, *, type: str | None = None, q: str | None = None, offset: int = 0, limit: int = 50,
              tag: str | None = None) -> Page:
    """Return one page of artifacts (by name) with version count, latest version, size and last update.

    :param type: only artifacts whose latest version has this type.
    :param q: only names containing this text (case-insensitive).
    :param tag: only artifacts with a live version carrying this tag.
    :raises InvalidNameError: for a malformed tag.
    """
    check_page(offset, limit)
    catalog = store.catalog
    found, total = pages.artifacts(catalog, type=type, q=q, offset=offset, limit=limit, tag=check_tag(tag) if tag else None)
    aliases = pages.live_aliases(catalog, [a.name for a in found])
    items = [
        {"name": a.name, "type": a.type, "versions": a.versions, "latest": f"v{a.latest}", "latest_number": a.latest,
         "size": a.size, "file_count": a.file_count, "updated_at": a.updated_at,
         "aliases": sorted(aliases.get(a.name, {}).keys())}
        for a in found
    ]
    return Page(items, total, offset, limit)


def types(store: Store) -> list[dict[str, Any]]:
    """Return every artifact type with how many artifacts have it (by their latest version)."""
    return [{"type": t, "artifacts": c} for t, c in pages.types(store.catalog)]


def versions(store: Store, name: str, *, offset: int = 0, limit: int = 50, tag: str | None = None) -> Page:
    """Return one page of an artifact's live versions, newest first, with aliases, tags and producer run.

    :param tag: only the versions carrying this tag.
    :raises InvalidNameError: for a malformed tag.
    """
    check_page(offset, limit)
    catalog = store.catalog
    found, total = pages.versions(catalog, name, offset=offset, limit=limit, tag=check_tag(tag) if tag else None)
    latest = V.latest_number(catalog, name)
    by_number: dict[int, list[str]] = {}
    for alias, number in pages.live_aliases(catalog, [name]).get(name, {}).items():
        by_number.setdefault(number, []).append(alias)
    tags = T.of_keys(catalog, [(name, v.number) for v in found])
    items = []
    for v in found:
        aliases = sorted(by_number.get(v.number, []))
        if v.number == latest:
            aliases = ["latest", *aliases]
        items.append({
            "name": name, "number": v.number, "version": f"v{v.number}", "spec": f"{name}:v{v.number}", "type": v.type,
            "size": v.size, "file_count": v.file_count, "created_at": v.created_at, "digest": v.digest, "aliases": aliases,
            "tags": list(tags.get((name, v.number), ())),
            "run": {"id": v.run_id, "name": v.run_name, "kind": v.run_kind} if v.run_id else None,
        })
    return Page(items, total, offset, limit)


def aliases(store: Store, name: str) -> list[dict[str, Any]]:
    """Return the aliases of an artifact, the version each points at and whether it is protected, by alias."""
    found = pages.live_aliases(store.catalog, [name]).get(name, {})
    return [{"alias": a, "number": n, "version": f"v{n}", "protected": store.is_protected(name, a)} for a, n in sorted(found.items())]


def tags(store: Store, name: str | None = None) -> list[dict[str, Any]]:
    """Return every tag on a live version (of ``name``, if given) with how many carry it, by tag."""
    return [{"tag": t, "versions": c} for t, c in T.counts(store.catalog, name).items()]


def runs(store: Store, *, name: str | None = None, kind: str | None = None, offset: int = 0, limit: int = 50) -> Page:
    """Return one page of runs, newest first, with how many versions each used and produced."""
    check_page(offset, limit)
    found, total = pages.runs(store.catalog, name=name, kind=kind, offset=offset, limit=limit)
    items = [
        {"id": r.id, "name": r.name, "kind": r.kind, "parent": r.parent, "status": r.status, "started_at": r.started_at,
         "ended_at": r.ended_at, "inputs": r.inputs, "outputs": r.outputs}
        for r in found
    ]
    return Page(items, total, offset, limit)


def run_kinds(store: Store) -> list[str]:
    """Return every run kind in the store."""
    return pages.run_kinds(store.catalog)


def counts(store: Store) -> dict[str, int]:
    """Return how many artifacts, live versions and runs the store has."""
    return pages.counts(store.catalog)
