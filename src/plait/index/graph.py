"""The lineage walks: recursive queries over ``uses``, ``versions.created_by`` and ``run_scope``.

A run's inputs are what it used and what the runs around it (``run_scope``: a Prefect task
around a Lightning fit, a flow around its tasks) had used before it started. Depth counts runs:
one step goes from a version to the versions its producing run used (upstream), or to the
versions made by the runs that used it (downstream).
"""

from __future__ import annotations

from collections.abc import Iterable

from plait.index.catalog import Catalog

#: A hard stop for recursive queries, far beyond any real pipeline.
MAX_DEPTH = 10_000

_UP = """
WITH RECURSIVE up(name, number, depth) AS (
    SELECT name, number, 0 FROM seed
    UNION
    SELECT u.name, u.number, up.depth + 1
    FROM up
    JOIN versions v ON v.name = up.name AND v.number = up.number
    JOIN run_scope s ON s.run = v.created_by
    JOIN uses u ON u.run = s.scope AND (s.scope = s.run OR u.event_id < s.run)
    WHERE v.created_by IS NOT NULL AND up.depth < ?
)
SELECT name, number, MIN(depth) FROM up GROUP BY name, number
"""

_DOWN = """
WITH RECURSIVE down(name, number, depth) AS (
    SELECT name, number, 0 FROM seed
    UNION
    SELECT v.name, v.number, down.depth + 1
    FROM down
    JOIN uses u ON u.name = down.name AND u.number = down.number
    JOIN run_scope s ON s.scope = u.run AND (s.scope = s.run OR u.event_id < s.run)
    JOIN versions v ON v.created_by = s.run
    WHERE down.depth < ?
)
SELECT name, number, MIN(depth) FROM down GROUP BY name, number
"""


def _walk(catalog: Catalog, sql: str, seeds: Iterable[tuple[str, int]], depth: int | None) -> dict[tuple[str, int], int]:
    with catalog.keys(seeds) as db:
        # a path visits each run at most once, so more steps than runs can only go round a
        # cycle (which the API refuses to make, but a hand-edited store could hold): stop there
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        limit = min(MAX_DEPTH if depth is None else depth, runs + 1)
        return {(n, num): d for n, num, d in db.execute(sql, (limit,)).fetchall()}


def upstream(catalog: Catalog, seeds: Iterable[tuple[str, int]], depth: int | None) -> dict[tuple[str, int], int]:
    """Return ``{(name, number): runs away}`` of every version the seeds were made from (seeds at 0)."""
    return _walk(catalog, _UP, seeds, depth)


def downstream(catalog: Catalog, seeds: Iterable[tuple[str, int]], depth: int | None) -> dict[tuple[str, int], int]:
    """Return ``{(name, number): runs away}`` of every version made from the seeds (seeds at 0)."""
    return _walk(catalog, _DOWN, seeds, depth)


def producers(catalog: Catalog, keys: Iterable[tuple[str, int]]) -> set[str]:
    """Return the ids of the runs that logged these versions."""
    with catalog.keys(keys) as db:
        return {r[0] for r in db.execute(
            "SELECT v.created_by FROM seed s JOIN versions v ON v.name = s.name AND v.number = s.number "
            "WHERE v.created_by IS NOT NULL").fetchall()}


def consumers(catalog: Catalog, keys: Iterable[tuple[str, int]]) -> set[str]:
    """Return the ids of the runs that used these versions."""
    with catalog.keys(keys) as db:
        return {r[0] for r in db.execute("SELECT u.run FROM seed s JOIN uses u ON u.name = s.name AND u.number = s.number").fetchall()}


def used_by_run(catalog: Catalog, run_id: str) -> list[tuple[str, int]]:
    """Return ``(name, number)`` of what one run used."""
    return [(n, int(v)) for n, v in catalog.fetch("SELECT name, number FROM uses WHERE run = ?", (run_id,))]


def logged_by_run(catalog: Catalog, run_id: str) -> list[tuple[str, int]]:
    """Return ``(name, number)`` of what one run logged."""
    return [(n, int(v)) for n, v in catalog.fetch("SELECT name, number FROM versions WHERE created_by = ?", (run_id,))]


def made_from_run(catalog: Catalog, run_id: str, name: str, number: int) -> bool:
    """Tell whether ``name:v<number>`` was logged by ``run_id`` or made from its outputs."""
    outputs = logged_by_run(catalog, run_id)
    return bool(outputs) and (name, number) in downstream(catalog, outputs, None)
