"""Paginated lists for the dashboard, answered with LIMIT/OFFSET and touching only one page's rows.

``versions`` is keyed by ``(name, number)``, so the per-artifact aggregates are an index scan:
the page's names are found first, then the aggregates are computed for those names only.
"""

from __future__ import annotations

from dataclasses import dataclass

from plait.index import producers as P
from plait.index import runs as RQ
from plait.index.catalog import Catalog


@dataclass(frozen=True)
class ArtifactSummary:
    """One artifact in a list: its latest live version and how many it has.

    :ivar name: artifact name.
    :ivar type: type of its latest version.
    :ivar versions: how many live versions.
    :ivar latest: number of the latest.
    :ivar size: bytes of the latest.
    :ivar file_count: files in the latest.
    :ivar updated_at: when a version of it was last logged (a re-log of old content counts).
    """

    name: str
    type: str
    versions: int
    latest: int
    size: int
    file_count: int
    updated_at: str


@dataclass(frozen=True)
class VersionSummary:
    """One version in an artifact's list, with its preferred producer.

    :ivar number: version number.
    :ivar type: artifact type.
    :ivar size: bytes.
    :ivar file_count: files.
    :ivar created_at: when it was logged.
    :ivar digest: manifest digest.
    :ivar run_id: the preferred producing run, if any (and its name and kind).
    """

    number: int
    type: str
    size: int
    file_count: int
    created_at: str
    digest: str
    run_id: str | None
    run_name: str | None
    run_kind: str | None


@dataclass(frozen=True)
class RunSummary:
    """One run in a list, with how many versions it used and logged.

    :ivar id: run id; the others as in ``runs``.
    """

    id: str
    name: str | None
    kind: str | None
    parent: str | None
    status: str
    started_at: str | None
    ended_at: str | None
    inputs: int
    outputs: int


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_LATEST = ("(SELECT l.{column} FROM versions l WHERE l.name = versions.name AND l.deleted = 0 "
           "ORDER BY l.touched DESC, l.number DESC LIMIT 1)")
_LATEST_TYPE = _LATEST.format(column="type")
_PAGE_DETAILS = """
SELECT m.name, v.type, m.count, v.number, v.size, v.file_count, m.updated
FROM (SELECT name, COUNT(*) AS count, {latest} AS latest, MAX(touched) AS updated
      FROM versions WHERE deleted = 0 AND name IN ({{marks}}) GROUP BY name) m
JOIN versions v ON v.name = m.name AND v.number = m.latest ORDER BY m.name
""".format(latest=_LATEST.format(column="number"))


#: A live version row of ``versions`` carries the tag bound at ``?``.
_TAGGED = (" AND EXISTS (SELECT 1 FROM tags t WHERE t.name = versions.name AND t.number = versions.number "
           "AND t.tag = ? AND t.present = 1)")


def artifacts(catalog: Catalog, *, type: str | None, q: str | None, offset: int, limit: int,
              tag: str | None = None) -> tuple[list[ArtifactSummary], int]:
    """Return one page of artifacts by name and the total count.

    :param type: only artifacts whose latest version has this type.
    :param q: only names containing this text (case-insensitive).
    :param tag: only artifacts with a live version carrying this tag.
    """
    sql, params = "SELECT name FROM versions WHERE deleted = 0", []
    if q:
        sql += " AND name LIKE ? ESCAPE '\\'"
        params.append(_like(q))
    if tag:
        sql += _TAGGED
        params.append(tag)
    sql += " GROUP BY name"
    if type:
        sql += f" HAVING {_LATEST_TYPE} = ?"
        params.append(type)
    total = catalog.fetch(f"SELECT COUNT(*) FROM ({sql})", params)[0][0]
    names = [r[0] for r in catalog.fetch(sql + " ORDER BY name LIMIT ? OFFSET ?", [*params, limit, offset])]
    rows = catalog.fetch(_PAGE_DETAILS.format(marks=",".join("?" for _ in names)), names) if names else []
    return [ArtifactSummary(*r[:6], updated_at=r[6].partition("|")[0]) for r in rows], int(total)


def types(catalog: Catalog) -> list[tuple[str, int]]:
    """Return ``(type, artifacts)`` for every type, counting artifacts by their latest version."""
    return [(t, int(c)) for t, c in catalog.fetch(
        f"SELECT type, COUNT(*) FROM (SELECT {_LATEST_TYPE} AS type FROM versions WHERE deleted = 0 GROUP BY name) "
        "GROUP BY type ORDER BY type")]


def live_aliases(catalog: Catalog, names: list[str]) -> dict[str, dict[str, int]]:
    """Return ``{name: {alias: number}}`` for these names."""
    if not names:
        return {}
    marks = ",".join("?" for _ in names)
    out: dict[str, dict[str, int]] = {}
    for name, alias, number in catalog.fetch(
        f"SELECT name, alias, number FROM aliases WHERE number IS NOT NULL AND name IN ({marks})", names
    ):
        out.setdefault(name, {})[alias] = number
    return out


def versions(catalog: Catalog, name: str, *, offset: int, limit: int,
             tag: str | None = None) -> tuple[list[VersionSummary], int]:
    """Return one page of an artifact's live versions, newest first, and the total count.

    Each version comes with its preferred producer (see :mod:`plait.index.producers`).

    :param tag: only the versions carrying this tag.
    """
    where, params = "WHERE name = ? AND deleted = 0" + (_TAGGED if tag else ""), [name, *([tag] if tag else [])]
    total = catalog.fetch(f"SELECT COUNT(*) FROM versions {where}", params)[0][0]
    rows = catalog.fetch(
        f"SELECT number, type, size, file_count, created_at, digest FROM versions {where} "
        "ORDER BY number DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    made = P.chosen(catalog, [(name, r[0]) for r in rows])
    runs = {r.id: r for r in RQ.rows(catalog, {p[0].run for p in made.values()})}
    out = []
    for row in rows:
        producer = made.get((name, row[0]), [None])[0]
        run = runs.get(producer.run) if producer is not None else None
        out.append(VersionSummary(*row, run_id=producer.run if producer else None, run_name=run.name if run else None,
                                  run_kind=run.kind if run else None))
    return out, int(total)


def runs(catalog: Catalog, *, name: str | None, kind: str | None, offset: int, limit: int) -> tuple[list[RunSummary], int]:
    """Return one page of runs, newest first, and the total count."""
    where, params = [], []
    for column, value in (("name", name), ("kind", kind)):
        if value:
            where.append(f"r.{column} = ?")
            params.append(value)
    clause = " WHERE " + " AND ".join(where) if where else ""
    total = catalog.fetch(f"SELECT COUNT(*) FROM runs r{clause}", params)[0][0]
    rows = catalog.fetch(
        "SELECT r.id, r.name, r.kind, r.parent, r.status, r.started_at, r.ended_at, "
        "(SELECT COUNT(*) FROM uses u WHERE u.run = r.id), "
        "(SELECT COUNT(*) FROM producers p JOIN versions v ON v.name = p.name AND v.number = p.number "
        "WHERE p.run = r.id AND v.deleted = 0) "
        f"FROM runs r{clause} ORDER BY r.id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [RunSummary(*r) for r in rows], int(total)


def run_kinds(catalog: Catalog) -> list[str]:
    """Return every run kind in the index."""
    return [r[0] for r in catalog.fetch("SELECT DISTINCT kind FROM runs WHERE kind IS NOT NULL ORDER BY kind")]


def counts(catalog: Catalog) -> dict[str, int]:
    """Return how many artifacts, live versions and runs the index holds."""
    q = catalog.fetch
    return {
        "artifacts": q("SELECT COUNT(DISTINCT name) FROM versions WHERE deleted = 0")[0][0],
        "versions": q("SELECT COUNT(*) FROM versions WHERE deleted = 0")[0][0],
        "runs": q("SELECT COUNT(*) FROM runs")[0][0],
    }
