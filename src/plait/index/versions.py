"""Queries about versions, aliases and fingerprints; each returns typed rows or plain values."""

from __future__ import annotations

from collections.abc import Iterable

from plait.index.catalog import Catalog
from plait.index.rows import VersionRow

_SELECT = f"SELECT {VersionRow.select()} FROM versions"
_SELECT_V = f"SELECT {VersionRow.select('v.')} FROM versions v"


def _rows(catalog: Catalog, sql: str, params: Iterable[object] = ()) -> list[VersionRow]:
    return [VersionRow.from_sql(r) for r in catalog.fetch(sql, params)]


def version(catalog: Catalog, name: str, number: int) -> VersionRow | None:
    """Return ``name:v<number>``, deleted or not, or ``None``."""
    rows = _rows(catalog, f"{_SELECT} WHERE name = ? AND number = ?", (name, number))
    return rows[0] if rows else None


def rows(catalog: Catalog, keys: Iterable[tuple[str, int]]) -> list[VersionRow]:
    """Return the versions named by ``(name, number)`` keys (those that exist), in key order."""
    with catalog.keys(keys) as db:
        found = db.execute(f"{_SELECT_V} JOIN seed s ON v.name = s.name AND v.number = s.number").fetchall()
    return sorted((VersionRow.from_sql(r) for r in found), key=lambda r: r.key)


#: Newest first by the moment a version was last logged (a re-log of old content counts), then number.
_NEWEST = "ORDER BY touched DESC, number DESC"


def latest_number(catalog: Catalog, name: str) -> int | None:
    """Return the number of ``name:latest``: the live version logged most recently.

    Logging content equal to an older version logs that version again (see
    :mod:`plait.index.fold`), so a revert makes the old version ``latest`` again.
    """
    found = catalog.fetch(f"SELECT number FROM versions WHERE name = ? AND deleted = 0 {_NEWEST} LIMIT 1", (name,))
    return found[0][0] if found else None


def latest(catalog: Catalog, name: str) -> VersionRow | None:
    """Return ``name:latest`` (see :func:`latest_number`), or ``None``."""
    rows_ = _rows(catalog, f"{_SELECT} WHERE name = ? AND deleted = 0 {_NEWEST} LIMIT 1", (name,))
    return rows_[0] if rows_ else None


def live_named(catalog: Catalog, name: str, digest: str) -> VersionRow | None:
    """Return the live version of ``name`` with this manifest digest (the newest, if several), or ``None``."""
    rows_ = _rows(catalog, f"{_SELECT} WHERE name = ? AND digest = ? AND deleted = 0 {_NEWEST} LIMIT 1", (name, digest))
    return rows_[0] if rows_ else None


def live(catalog: Catalog, name: str) -> list[VersionRow]:
    """Return every live version of ``name``, oldest first."""
    return _rows(catalog, f"{_SELECT} WHERE name = ? AND deleted = 0 ORDER BY number", (name,))


def live_numbers(catalog: Catalog, name: str) -> list[int]:
    """Return the numbers of the live versions of ``name``, ascending."""
    return [r[0] for r in catalog.fetch("SELECT number FROM versions WHERE name = ? AND deleted = 0 ORDER BY number", (name,))]


def numbers(catalog: Catalog, name: str) -> set[int]:
    """Return every indexed version number of ``name``, deleted ones included."""
    return {r[0] for r in catalog.fetch("SELECT number FROM versions WHERE name = ?", (name,))}


def highest_known(catalog: Catalog, name: str) -> int | None:
    """Return the highest version number of ``name`` the index knows of in any way: indexed, or
    announced by an event (even one whose record is now missing or unreadable).

    A new version never takes such a number, so a version whose record was lost is reported,
    not silently replaced.
    """
    found = catalog.fetch(
        "SELECT MAX(n) FROM (SELECT MAX(number) AS n FROM versions WHERE name = ? "
        "UNION ALL SELECT MAX(number) FROM events WHERE name = ? AND kind = 'version.logged' "
        "UNION ALL SELECT MAX(number) FROM rejected WHERE name = ? AND kind = 'version.logged')",
        (name, name, name),
    )
    return found[0][0] if found and found[0][0] is not None else None


def rejected(catalog: Catalog) -> list[tuple[str, str, int | None, str]]:
    """Return ``(event id, artifact name, number, reason)`` of every announcement the index refused."""
    return [(i, n, v, r) for i, n, v, r in catalog.fetch("SELECT id, name, number, reason FROM rejected ORDER BY id")]


def keys(catalog: Catalog, *, live_only: bool = False) -> list[tuple[str, int]]:
    """Return ``(name, number)`` of every indexed version (only live ones with ``live_only``), sorted."""
    where = " WHERE deleted = 0" if live_only else ""
    return sorted((n, int(v)) for n, v in catalog.fetch(f"SELECT name, number FROM versions{where}"))


def count(catalog: Catalog) -> int:
    """Return how many versions are indexed, deleted ones included."""
    return int(catalog.fetch("SELECT COUNT(*) FROM versions")[0][0])


def live_counts(catalog: Catalog) -> dict[str, int]:
    """Return ``{name: how many live versions}`` for every artifact name."""
    return {n: int(c) for n, c in catalog.fetch("SELECT name, COUNT(*) FROM versions WHERE deleted = 0 GROUP BY name")}


def names(catalog: Catalog) -> list[str]:
    """Return every artifact name with a live version, sorted."""
    return [r[0] for r in catalog.fetch("SELECT DISTINCT name FROM versions WHERE deleted = 0 ORDER BY name")]


#: ``(name, number)`` of every name's latest live version.
LATEST_OF_EACH = ("SELECT name, number FROM (SELECT name, number, ROW_NUMBER() OVER (PARTITION BY name "
                  "ORDER BY touched DESC, number DESC) AS rank_ FROM versions WHERE deleted = 0{where}) WHERE rank_ = 1")


#: The number of ``n.name``'s latest live version, one index lookup per name (a window over
#: every version of the names costs ~50 ms at 20,000 versions; 200 lookups cost ~2 ms).
LATEST_NUMBER_OF = ("(SELECT l.number FROM versions l WHERE l.name = {name} AND l.deleted = 0 "
                    "ORDER BY l.touched DESC, l.number DESC LIMIT 1)")
#: ``(name, number)`` of every name's latest live version, by lookups per name.
LATEST_BY_NAME = f"SELECT n.name, {LATEST_NUMBER_OF.format(name='n.name')} FROM (SELECT DISTINCT name FROM versions) n"


def latest_of_each(catalog: Catalog, type: str | None = None) -> list[VersionRow]:
    """Return the latest live version of every artifact (whose latest version has ``type``), by name."""
    sql = f"{_SELECT_V} JOIN ({LATEST_OF_EACH.format(where='')}) m ON v.name = m.name AND v.number = m.number"
    params: list[object] = []
    if type is not None:
        sql += " WHERE v.type = ?"
        params.append(type)
    return _rows(catalog, sql + " ORDER BY v.name", params)


def alias_number(catalog: Catalog, name: str, alias: str) -> int | None:
    """Return the version number an alias points at, if it is set."""
    found = catalog.fetch("SELECT number FROM aliases WHERE name = ? AND alias = ?", (name, alias))
    return found[0][0] if found else None


def aliases_of(catalog: Catalog, name: str, number: int | None = None) -> dict[int, list[str]]:
    """Return ``{number: [alias, …]}`` for one name (or one version), aliases sorted."""
    sql = "SELECT number, alias FROM aliases WHERE name = ? AND number IS NOT NULL"
    params: list[object] = [name]
    if number is not None:
        sql += " AND number = ?"
        params.append(number)
    out: dict[int, list[str]] = {}
    for num, alias in catalog.fetch(sql + " ORDER BY alias", params):
        out.setdefault(num, []).append(alias)
    return out


def labels(catalog: Catalog, found: Iterable[VersionRow]) -> dict[tuple[str, int], tuple[str, ...]]:
    """Return the aliases of each version, ``latest`` first where it is its name's latest."""
    found = list(found)
    names_ = sorted({r.name for r in found})
    newest: dict[str, int] = {}
    aliases: dict[tuple[str, int], list[str]] = {}
    for batch in _chunks(names_):
        marks = ", ".join("?" * len(batch))
        newest.update((n, v) for n, v in catalog.fetch(
            f"SELECT n.name, {LATEST_NUMBER_OF.format(name='n.name')} FROM (SELECT DISTINCT name FROM versions "
            f"WHERE name IN ({marks})) n", batch) if v is not None)
        for name, number, alias in catalog.fetch(
            f"SELECT name, number, alias FROM aliases WHERE number IS NOT NULL AND name IN ({marks}) ORDER BY alias", batch
        ):
            aliases.setdefault((name, number), []).append(alias)
    out = {}
    for row in found:
        tags = aliases.get(row.key, [])
        if not row.deleted and newest.get(row.name) == row.number:
            tags = ["latest", *tags]
        out[row.key] = tuple(tags)
    return out


def by_content(catalog: Catalog, digest: str, file_digest: str | None = None) -> list[VersionRow]:
    """Return the live versions holding this content, oldest first: the same manifest digest or,
    for one stored file, the same file bytes under any file name (exact digests first)."""
    if file_digest is None:
        return _rows(catalog, f"{_SELECT} WHERE digest = ? AND deleted = 0 ORDER BY created_at, name, number", (digest,))
    return _rows(
        catalog,
        f"{_SELECT} WHERE (digest = ? OR file_digest = ?) AND deleted = 0 ORDER BY digest != ?, created_at, name, number",
        (digest, file_digest, digest),
    )


def live_digests(catalog: Catalog, name: str | None = None) -> set[str]:
    """Return the manifest digests of every live version (of ``name``)."""
    if name is None:
        return {r[0] for r in catalog.fetch("SELECT DISTINCT digest FROM versions WHERE deleted = 0")}
    return {r[0] for r in catalog.fetch("SELECT DISTINCT digest FROM versions WHERE name = ? AND deleted = 0", (name,))}


def with_digest(catalog: Catalog, name: str, digest: str) -> list[VersionRow]:
    """Return every version of ``name`` with this manifest digest (deleted ones too), by number."""
    return _rows(catalog, f"{_SELECT} WHERE name = ? AND digest = ? ORDER BY number", (name, digest))


def outputs(catalog: Catalog, run_id: str) -> list[VersionRow]:
    """Return the versions a run logged (made, or logged again with the same content), oldest first."""
    return _rows(catalog, f"{_SELECT_V} JOIN producers p ON p.name = v.name AND p.number = v.number WHERE p.run = ? "
                          "ORDER BY p.first_at, v.name, v.number", (run_id,))


def logged_inside(catalog: Catalog, run_id: str, digest: str, file_digest: str | None) -> VersionRow | None:
    """Return the newest live version with this content logged by a run nested inside ``run_id``."""
    found = _rows(
        catalog,
        f"{_SELECT_V} JOIN producers p ON p.name = v.name AND p.number = v.number JOIN run_scope s ON s.run = p.run "
        "WHERE s.scope = ? AND s.run != ? AND v.deleted = 0 AND (v.digest = ? OR (? IS NOT NULL AND v.file_digest = ?)) "
        "ORDER BY p.last_at DESC LIMIT 1",
        (run_id, run_id, digest, file_digest, file_digest),
    )
    return found[0] if found else None


def fingerprinted(catalog: Catalog, fingerprint: str) -> list[tuple[str, int]]:
    """Return the ``(name, number)`` versions an object with this fingerprint was logged as."""
    return [(n, int(v)) for n, v in catalog.fetch("SELECT name, number FROM fingerprints WHERE fingerprint = ?", (fingerprint,))]


def remember_fingerprint(catalog: Catalog, fingerprint: str, name: str, number: int) -> None:
    """Remember that an object with this fingerprint was logged as ``name:v<number>``.

    Fingerprints are a local shortcut: they live only in this index, not in the store.
    """
    with catalog.transaction() as db:
        db.execute("INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?)", (fingerprint, name, number))


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
