"""Queries about tags and expiry: what each version carries now (folded in :mod:`plait.index.lifecycle`)."""

from __future__ import annotations

from collections.abc import Iterable

from plait.index.catalog import Catalog


def of_version(catalog: Catalog, name: str, number: int) -> list[str]:
    """Return the tags on ``name:v<number>`` now, sorted."""
    return [r[0] for r in catalog.fetch(
        "SELECT tag FROM tags WHERE name = ? AND number = ? AND present = 1 ORDER BY tag", (name, number))]


def of_keys(catalog: Catalog, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[str, ...]]:
    """Return ``{(name, number): tags}`` for the versions that carry any, tags sorted."""
    out: dict[tuple[str, int], list[str]] = {}
    rows = catalog.fetch_with(
        "SELECT t.name, t.number, t.tag FROM k JOIN tags t ON t.name = k.name AND t.number = k.number "
        "WHERE t.present = 1", {"k": (("name", "number"), sorted(set(keys)))})
    for name, number, tag in sorted(rows):
        out.setdefault((name, number), []).append(tag)
    return {k: tuple(v) for k, v in out.items()}


def expiries(catalog: Catalog, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Return ``{(name, number): ISO time it expires}`` for the versions that have a TTL."""
    rows = catalog.fetch_with(
        "SELECT e.name, e.number, e.expires_at FROM k JOIN expiry e ON e.name = k.name AND e.number = k.number "
        "WHERE e.expires_at IS NOT NULL", {"k": (("name", "number"), sorted(set(keys)))})
    return {(n, int(v)): at for n, v, at in rows}


def counts(catalog: Catalog, name: str | None = None) -> dict[str, int]:
    """Return ``{tag: how many live versions carry it}`` (of ``name``, if given), by tag."""
    sql = ("SELECT t.tag, COUNT(*) FROM tags t JOIN versions v ON v.name = t.name AND v.number = t.number "
           "WHERE t.present = 1 AND v.deleted = 0")
    params: tuple[object, ...] = ()
    if name is not None:
        sql += " AND t.name = ?"
        params = (name,)
    return {t: int(c) for t, c in catalog.fetch(sql + " GROUP BY t.tag ORDER BY t.tag", params)}


def names_tagged(catalog: Catalog, tags: Iterable[str]) -> set[str]:
    """Return the names that have a live version carrying every tag in ``tags`` (on one version)."""
    wanted = sorted(set(tags))
    sql = ("SELECT t.name FROM tags t JOIN versions v ON v.name = t.name AND v.number = t.number "
           f"WHERE t.present = 1 AND v.deleted = 0 AND t.tag IN ({','.join('?' for _ in wanted)}) "
           "GROUP BY t.name, t.number HAVING COUNT(DISTINCT t.tag) = ?")
    return {r[0] for r in catalog.fetch(sql, [*wanted, len(wanted)])}
