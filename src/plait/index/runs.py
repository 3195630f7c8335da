"""Queries about runs and the versions they used."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from plait.index.catalog import Catalog
from plait.index.rows import RunRow, VersionRow


def run(catalog: Catalog, run_id: str) -> RunRow | None:
    """Return the run with exactly this id, or ``None``."""
    found = catalog.fetch(f"SELECT {RunRow.select()} FROM runs WHERE id = ?", (run_id,))
    return RunRow.from_sql(found[0]) if found else None


def rows(catalog: Catalog, ids: Iterable[str]) -> list[RunRow]:
    """Return the runs with these ids (those that exist), by id."""
    out: list[RunRow] = []
    ids = sorted(set(ids))
    for batch in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        marks = ", ".join("?" * len(batch))
        out += [RunRow.from_sql(r) for r in catalog.fetch(f"SELECT {RunRow.select()} FROM runs WHERE id IN ({marks})", batch)]
    return sorted(out, key=lambda r: r.id)


def ids_matching(catalog: Catalog, part: str, limit: int = 10) -> list[str]:
    """Return up to ``limit`` run ids that start or end with ``part`` (case-insensitive), oldest first.

    The short ids plait prints are the ends of run ids: the random part, which tells apart runs
    started in the same millisecond (their beginnings, the time, do not).
    """
    escaped = part.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return [r[0] for r in catalog.fetch("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' "
                                        "ORDER BY id LIMIT ?", (escaped + "%", "%" + escaped, limit))]


def find(catalog: Catalog, *, name: str | None = None, kind: str | None = None, parent: str | None = None,
         limit: int | None = None, info: Mapping[str, Collection[str | int | float]] | None = None) -> list[RunRow]:
    """Return runs, newest first, filtered by name, kind, parent run id and recorded facts.

    :param info: ``{dotted key: values}``: keep runs whose start record holds one of the values
        at that key (``{"prefect.task_run_id": [...]}``); keys are checked by the caller.
    """
    sql, params = f"SELECT {RunRow.select()} FROM runs WHERE 1 = 1", []
    for column, value in (("name", name), ("kind", kind), ("parent", parent)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    for key, values in (info or {}).items():
        if not values:
            return []
        sql += f" AND json_extract(body, ?) IN ({', '.join('?' * len(values))})"
        params += ["$." + ".".join(f'"{part}"' for part in key.split(".")), *values]
    sql += " ORDER BY id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [RunRow.from_sql(r) for r in catalog.fetch(sql, params)]


def children(catalog: Catalog, run_id: str) -> list[RunRow]:
    """Return the runs started inside ``run_id``, oldest first."""
    return [RunRow.from_sql(r) for r in catalog.fetch(f"SELECT {RunRow.select()} FROM runs WHERE parent = ? ORDER BY id", (run_id,))]


def ids(catalog: Catalog) -> set[str]:
    """Return the id of every indexed run."""
    return {r[0] for r in catalog.fetch("SELECT id FROM runs")}


def count(catalog: Catalog) -> int:
    """Return how many runs are indexed."""
    return int(catalog.fetch("SELECT COUNT(*) FROM runs")[0][0])


def inputs(catalog: Catalog, run_id: str) -> list[VersionRow]:
    """Return the versions a run used, in the order it used them."""
    return [VersionRow.from_sql(r) for r in catalog.fetch(
        f"SELECT {VersionRow.select('v.')} FROM uses u JOIN versions v ON v.name = u.name AND v.number = u.number "
        "WHERE u.run = ? ORDER BY u.event_id", (run_id,))]


def users(catalog: Catalog, name: str, number: int) -> list[str]:
    """Return the ids of the runs that used ``name:v<number>``, in the order they used it."""
    return [r[0] for r in catalog.fetch("SELECT run FROM uses WHERE name = ? AND number = ? ORDER BY event_id", (name, number))]


def uses(catalog: Catalog, run_ids: Iterable[str]) -> list[tuple[str, str, int]]:
    """Return ``(run, name, number)`` for every use recorded by these runs."""
    ids_ = sorted(set(run_ids))
    out: list[tuple[str, str, int]] = []
    for batch in (ids_[i : i + 500] for i in range(0, len(ids_), 500)):
        marks = ", ".join("?" * len(batch))
        out += [(r, n, int(v)) for r, n, v in catalog.fetch(f"SELECT run, name, number FROM uses WHERE run IN ({marks})", batch)]
    return out


def produced(catalog: Catalog, run_ids: Iterable[str]) -> list[tuple[str, str, int]]:
    """Return ``(run, name, number)`` for every version these runs logged (made, or logged again)."""
    ids_ = sorted(set(run_ids))
    out: list[tuple[str, str, int]] = []
    for batch in (ids_[i : i + 500] for i in range(0, len(ids_), 500)):
        marks = ", ".join("?" * len(batch))
        out += [(r, n, int(v)) for r, n, v in catalog.fetch(
            f"SELECT run, name, number FROM producers WHERE run IN ({marks})", batch)]
    return out


def used(catalog: Catalog, run_id: str, name: str, number: int) -> bool:
    """Tell whether ``run_id`` recorded a use of ``name:v<number>``."""
    return bool(catalog.fetch("SELECT 1 FROM uses WHERE run = ? AND name = ? AND number = ?", (run_id, name, number)))
