"""The lineage walks over ``uses``, ``producers`` and ``run_scope``, safe on any graph.

One step goes from a version to the versions its producing run used (upstream), or from a
version to the versions made by the runs that used it (downstream); depth counts these steps.
Which runs produced a version is :mod:`plait.index.producers`: by default the walks follow each
version's preferred producer, with ``mode="all"`` every producer.

What a run's output is made from:

- what the run used *before* it logged the output: a run that logs ``a``, then uses ``b`` made
  from ``a``, did not make ``a`` from ``b``;
- what the runs around it (``run_scope``: a Prefect task around a Lightning fit, a flow around
  its tasks, an implicit run's earlier segment) had used before it started.

The walks go breadth first and visit each version once, so a cycle (a run that uses what was
made from its own outputs records the use) or a chain thousands of runs deep ends, and each
version is reported at its shortest distance. Each step is one query for the whole frontier.
"""

from __future__ import annotations

from collections.abc import Iterable

from plait.index import producers as P
from plait.index.catalog import Catalog

#: The versions the seeded runs' outputs were made from (``step``: a producing run and the moment
#: of its production).
_INPUTS = """
SELECT DISTINCT u.name, u.number FROM step t
JOIN run_scope s ON s.run = t.run
JOIN uses u ON u.run = s.scope
LEFT JOIN runs r ON r.id = t.run
WHERE u.at < t.at AND (s.scope = t.run OR u.at < r.started_at)
"""

#: ``(name, number, run)`` of what runs made after they (or a run around them) used a seeded version.
_MADE_FROM = """
SELECT DISTINCT p.name, p.number, p.run FROM seed k
JOIN uses u ON u.name = k.name AND u.number = k.number
JOIN run_scope s ON s.scope = u.run
LEFT JOIN runs r ON r.id = s.run
JOIN producers p ON p.run = s.run
WHERE u.at < p.last_at AND (s.run = u.run OR u.at < r.started_at)
"""


def upstream(catalog: Catalog, seeds: Iterable[tuple[str, int]], depth: int | None,
             mode: str = P.PREFERRED) -> dict[tuple[str, int], int]:
    """Return ``{(name, number): steps away}`` of every version the seeds were made from (seeds at 0).

    :param depth: the most steps to take (``None``: all).
    :param mode: follow each version's preferred producer (``"preferred"``) or every one (``"all"``).
    """
    found = {key: 0 for key in seeds}
    frontier = list(found)
    level = 0
    while frontier and (depth is None or level < depth):
        made = P.chosen(catalog, frontier, mode)
        steps = {(p.run, p.last_at) for rows in made.values() for p in rows}
        level += 1
        with catalog.temp("step", ("run TEXT", "at TEXT"), steps) as db:
            inputs = [(n, int(v)) for n, v in db.execute(_INPUTS).fetchall()]
        frontier = [key for key in inputs if key not in found]
        found.update((key, level) for key in frontier)
    return found


def downstream(catalog: Catalog, seeds: Iterable[tuple[str, int]], depth: int | None,
               mode: str = P.PREFERRED) -> dict[tuple[str, int], int]:
    """Return ``{(name, number): steps away}`` of every version made from the seeds (seeds at 0).

    :param depth: the most steps to take (``None``: all).
    :param mode: as for :func:`upstream`; a version counts as made from a seed only through a
        producer the walk follows.
    """
    found = {key: 0 for key in seeds}
    frontier = list(found)
    level = 0
    while frontier and (depth is None or level < depth):
        with catalog.keys(frontier) as db:
            made = [(n, int(v), run) for n, v, run in db.execute(_MADE_FROM).fetchall()]
        if mode != P.ALL:
            follow = P.chosen(catalog, {(n, v) for n, v, _ in made}, mode)
            made = [(n, v, run) for n, v, run in made if any(p.run == run for p in follow.get((n, v), ()))]
        level += 1
        frontier = sorted({(n, v) for n, v, _ in made if (n, v) not in found})
        found.update((key, level) for key in frontier)
    return found


def producers(catalog: Catalog, keys: Iterable[tuple[str, int]], mode: str = P.PREFERRED) -> set[str]:
    """Return the ids of the runs a walk follows as producers of these versions."""
    return {p.run for rows in P.chosen(catalog, keys, mode).values() for p in rows}


def consumers(catalog: Catalog, keys: Iterable[tuple[str, int]]) -> set[str]:
    """Return the ids of the runs that used these versions."""
    with catalog.keys(keys) as db:
        return {r[0] for r in db.execute("SELECT u.run FROM seed s JOIN uses u ON u.name = s.name AND u.number = s.number").fetchall()}


def used_by_run(catalog: Catalog, run_id: str) -> list[tuple[str, int]]:
    """Return ``(name, number)`` of what one run used."""
    return [(n, int(v)) for n, v in catalog.fetch("SELECT name, number FROM uses WHERE run = ?", (run_id,))]


def logged_by_run(catalog: Catalog, run_id: str) -> list[tuple[str, int]]:
    """Return ``(name, number)`` of what one run logged (made, or logged again)."""
    return [(n, int(v)) for n, v in catalog.fetch("SELECT name, number FROM producers WHERE run = ?", (run_id,))]


def derived_from_run(catalog: Catalog, run_id: str, name: str, number: int) -> bool:
    """Tell whether ``name:v<number>`` was made, through any producer, from something ``run_id`` logged."""
    found = upstream(catalog, [(name, number)], None, P.ALL)
    return run_id in producers(catalog, found, P.ALL)
