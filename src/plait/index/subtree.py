"""What a run and every run nested in it (a flow and its tasks) used and produced, over ``run_scope``,
``uses`` and ``producers``.

``run_scope`` holds each run with itself and every run around it, so "the runs inside R" is
``scope = R``: one indexed lookup, at any depth.
"""

from __future__ import annotations

from plait.index.catalog import Catalog
from plait.index.rows import VersionRow

_INSIDE = "SELECT run FROM run_scope WHERE scope = ?"


def _with_run(catalog: Catalog, sql: str, params: tuple[str, ...]) -> list[tuple[VersionRow, str]]:
    width = len(VersionRow.COLUMNS)
    return [(VersionRow.from_sql(r[:width]), r[width]) for r in catalog.fetch(sql, params)]


def inputs(catalog: Catalog, run_id: str) -> list[tuple[VersionRow, str]]:
    """Return what the runs inside ``run_id`` (itself included) used that none of them had produced
    by then (a version a task made and the next task read is an intermediate, not an input).

    :returns: ``(version, id of the first run inside that used it)``, in the order of first use.
    """
    return _with_run(catalog, (
        # with one MIN() in the select list SQLite takes the bare u.run from the row holding the minimum
        f"SELECT {VersionRow.select('v.')}, u.run, MIN(u.event_id) AS first FROM uses u "
        "JOIN versions v ON v.name = u.name AND v.number = u.number "
        f"WHERE u.run IN ({_INSIDE}) AND NOT EXISTS (SELECT 1 FROM producers p WHERE p.name = u.name "
        f"AND p.number = u.number AND p.first_at <= u.at AND p.run IN ({_INSIDE})) "
        "GROUP BY v.name, v.number ORDER BY first"), (run_id, run_id))


def outputs(catalog: Catalog, run_id: str) -> list[tuple[VersionRow, str]]:
    """Return every version a run inside ``run_id`` (itself included) produced (made, or logged
    again), in the order they were first produced there, with the id of the run that did first."""
    return _with_run(catalog, (
        f"SELECT {VersionRow.select('v.')}, p.run, MIN(p.first_at) AS first FROM producers p "
        f"JOIN versions v ON v.name = p.name AND v.number = p.number WHERE p.run IN ({_INSIDE}) "
        "GROUP BY v.name, v.number ORDER BY first, v.name, v.number"), (run_id,))


def used_inside(catalog: Catalog, run_id: str) -> list[tuple[tuple[str, int], str]]:
    """Return ``((name, number), moment of the use)`` of every use by a run inside ``run_id``
    (itself included), as :func:`plait.index.graph.used_by_run` does for one run."""
    return [((n, int(v)), at) for n, v, at in catalog.fetch(f"SELECT name, number, at FROM uses WHERE run IN ({_INSIDE})", (run_id,))]


def inherited(catalog: Catalog, run_id: str) -> list[tuple[VersionRow, str]]:
    """Return what the runs around ``run_id`` had used before it started (it works on those too).

    :returns: ``(version, id of the run around it that used it)``, in the order they were used.
    """
    return _with_run(catalog, (
        f"SELECT {VersionRow.select('v.')}, u.run FROM run_scope s JOIN uses u ON u.run = s.scope AND u.event_id < s.run "
        "JOIN versions v ON v.name = u.name AND v.number = u.number WHERE s.run = ? AND s.scope != s.run "
        "ORDER BY u.event_id"), (run_id,))


def runs_inside(catalog: Catalog, run_id: str) -> set[str]:
    """Return the ids of ``run_id`` and every run nested in it, at any depth."""
    return {r[0] for r in catalog.fetch(_INSIDE, (run_id,))}


def logged_inside(catalog: Catalog, run_id: str) -> set[tuple[str, int]]:
    """Return ``(name, number)`` of every version a run inside ``run_id`` (itself included) produced."""
    return {(n, int(v)) for n, v in catalog.fetch(f"SELECT name, number FROM producers WHERE run IN ({_INSIDE})", (run_id,))}
