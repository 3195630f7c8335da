"""``find``: versions filtered by type, name, tags, aliases, time and metadata conditions,
sorted and paged, in one SQL query over the index (metadata read with SQLite's JSON functions).

Every value the user gives is a bound parameter; the only text put into the SQL comes from
fixed tables here (column names of :data:`~plait.formats.query.FIELDS`, operators of
:data:`~plait.formats.query.OPERATORS`), so nothing a user types can change the query's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plait.formats.query import Condition, SortKey
from plait.index.catalog import Catalog
from plait.index.rows import VersionRow
from plait.index.versions import LATEST_BY_NAME


@dataclass(frozen=True)
class Query:
    """What to find (every filter must hold).

    :ivar types: any of these types.
    :ivar names: any of these names; a name with ``*``, ``?`` or ``[`` is a glob.
    :ivar tags: carrying every one of these tags.
    :ivar aliases: pointed at by any of these aliases (``latest``: its name's latest version).
    :ivar where: every one of these conditions.
    :ivar created_after: logged after this ISO UTC time.
    :ivar created_before: logged before this ISO UTC time.
    :ivar digest: with this manifest digest.
    :ivar deleted: include deleted versions.
    :ivar sort: sort keys, then name and number.
    :ivar limit: at most this many rows (``None``: all).
    :ivar offset: skip this many first.
    """

    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    where: tuple[Condition, ...] = ()
    created_after: str | None = None
    created_before: str | None = None
    digest: str | None = None
    deleted: bool = False
    sort: tuple[SortKey, ...] = field(default=())
    limit: int | None = None
    offset: int = 0


def find(catalog: Catalog, query: Query) -> tuple[list[VersionRow], int]:
    """Return one page of the versions ``query`` selects, and how many it selects in all.

    The page is chosen on keys alone (sorting 20,000 rows with their metadata costs ~6x more),
    then its rows are read by key.
    """
    clauses, params = _filters(query)
    order, order_params = _order(query.sort)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    keys = catalog.fetch(f"SELECT v.name, v.number, COUNT(*) OVER () FROM versions v{where} ORDER BY {order} LIMIT ? OFFSET ?",
                         [*params, *order_params, -1 if query.limit is None else query.limit, query.offset])
    if not keys:
        total = catalog.fetch(f"SELECT COUNT(*) FROM versions v{where}", params)[0][0] if query.offset else 0
        return [], int(total)
    found = catalog.fetch_with(f"SELECT {VersionRow.select('v.')} FROM k JOIN versions v ON v.name = k.name AND v.number = k.number",
                               {"k": (("name", "number"), [(n, v) for n, v, _ in keys])})
    by_key = {(r[0], r[1]): VersionRow.from_sql(r) for r in found}
    return [by_key[(n, v)] for n, v, _ in keys if (n, v) in by_key], int(keys[0][2])


def _filters(query: Query) -> tuple[list[str], list[Any]]:
    clauses: list[str] = [] if query.deleted else ["v.deleted = 0"]
    params: list[Any] = []
    if query.types:
        clauses.append(f"v.type IN ({', '.join('?' * len(query.types))})")
        params += query.types
    if query.names:
        clauses.append("(" + " OR ".join("v.name GLOB ?" if any(c in n for c in "*?[") else "v.name = ?"
                                         for n in query.names) + ")")
        params += query.names
    for tag in query.tags:
        clauses.append("EXISTS (SELECT 1 FROM tags t WHERE t.name = v.name AND t.number = v.number "
                       "AND t.tag = ? AND t.present = 1)")
        params.append(tag)
    if query.aliases:
        alternatives = []
        for alias in query.aliases:
            if alias == "latest":
                alternatives.append(f"(v.name, v.number) IN ({LATEST_BY_NAME})")
            else:
                alternatives.append("EXISTS (SELECT 1 FROM aliases a WHERE a.name = v.name AND a.number = v.number "
                                    "AND a.alias = ?)")
                params.append(alias)
        clauses.append("(" + " OR ".join(alternatives) + ")")
    if query.created_after is not None:
        clauses.append("v.created_at > ?")
        params.append(query.created_after)
    if query.created_before is not None:
        clauses.append("v.created_at < ?")
        params.append(query.created_before)
    if query.digest is not None:
        clauses.append("v.digest = ?")
        params.append(query.digest)
    for condition in query.where:
        clause, args = _condition(condition)
        clauses.append(clause)
        params += args
    return clauses, params


#: The SQL of each operator (fixed text; never from the user).
_SQL_OPS = {"=": "=", "!=": "=", ">": ">", ">=": ">=", "<": "<", "<=": "<=", "~": "GLOB"}


def _condition(c: Condition) -> tuple[str, list[Any]]:
    """Return the SQL of one condition and its parameters."""
    if c.key.field is not None:
        column = f"v.{c.key.field}"  # a name from FIELDS, checked by the parser
        if c.op == "exists":
            return "1", []
        if c.op == "missing":
            return "0", []
        sql = f"{column} {_SQL_OPS[c.op]} ?"
        return (f"NOT ({sql})" if c.op == "!=" else sql), [c.value]
    path = c.key.json_path
    kind = "json_type(v.metadata, ?)"
    if c.op == "exists":
        return f"{kind} IS NOT NULL", [path]
    if c.op == "missing":
        return f"{kind} IS NULL", [path]
    types, value = _json_kinds(c.value)
    same_kind = f"{kind} IN ({', '.join('?' * len(types))})"
    if c.value is None or isinstance(c.value, bool):  # = / != only (the parser checks)
        sql = same_kind
        args: list[Any] = [path, *types]
    else:
        sql = f"({same_kind} AND json_extract(v.metadata, ?) {_SQL_OPS[c.op]} ?)"
        args = [path, *types, path, value]
    if c.op == "!=":
        return f"({kind} IS NOT NULL AND NOT {sql})", [path, *args]
    return sql, args


def _json_kinds(value: Any) -> tuple[tuple[str, ...], Any]:
    """Return the ``json_type`` names a value compares with, and the value as SQLite holds it."""
    if value is None:
        return ("null",), None
    if isinstance(value, bool):
        return ("true",) if value else ("false",), None
    if isinstance(value, (int, float)):
        return ("integer", "real"), value
    return ("text",), value


def _order(sort: tuple[SortKey, ...]) -> tuple[str, list[Any]]:
    """Return the ``ORDER BY`` text and its parameters: the sort keys, then newest first, name, number."""
    terms: list[str] = []
    params: list[Any] = []
    for s in sort:
        direction = "DESC" if s.descending else "ASC"
        if s.key.field is not None:
            terms.append(f"v.{s.key.field} {direction}")
        else:  # numbers (1), then other values (0), then versions without the key (-1), whichever the direction
            terms += ["COALESCE(json_type(v.metadata, ?) IN ('integer', 'real'), -1) DESC",
                      f"json_extract(v.metadata, ?) {direction}"]
            params += [s.key.json_path] * 2
    if not sort:
        terms.append("v.created_at DESC")
    terms += ["v.name ASC", "v.number DESC"]
    return ", ".join(terms), params
