"""Which runs produced a version, which of them is preferred, and which version a hand-off means.

A version has every run that produced it: the run that logged it first and every run that later
logged the same content under that name (:mod:`plait.index.fold`). One of them is *preferred*,
the one lineage follows by default and ``produced_by`` names:

1. a run that made it, rather than one that used it and handed the same content on (a
   fine-tuning stage that kept the weights it started from did not make them);
2. a run that finished, and no run around it failed (a task of a failed flow counts as failed);
   else one still running; else a failed one;
3. among equals, the one that produced it last.

So a flow that failed and then succeeded on a rerun credits the rerun's task, and a version
made again today by a pipeline that works is credited to today's run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from plait.index.catalog import Catalog
from plait.index.rows import ProducerRow, VersionRow

#: Every producer of the seeded versions, with its status and whether a run around it failed.
_OF_SEEDS = """
SELECT p.name, p.number, p.run, p.first_at, p.last_at, r.status,
       EXISTS (SELECT 1 FROM run_scope s JOIN runs a ON a.id = s.scope
               WHERE s.run = p.run AND s.scope != p.run AND a.status = 'failed'),
       EXISTS (SELECT 1 FROM uses u WHERE u.run = p.run AND u.name = p.name AND u.number = p.number AND u.at < p.first_at)
FROM seed k JOIN producers p ON p.name = k.name AND p.number = k.number LEFT JOIN runs r ON r.id = p.run
ORDER BY p.first_at, p.run
"""
_KEY = ("name", "number")

#: What ``producers=`` accepts in lineage queries: the preferred producer of each version, or all.
PREFERRED, ALL = "preferred", "all"
MODES = (PREFERRED, ALL)


def of(catalog: Catalog, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], list[ProducerRow]]:
    """Return ``{(name, number): producers}`` for the versions that have any, oldest producer first."""
    out: dict[tuple[str, int], list[ProducerRow]] = {}
    for row in catalog.fetch_with(_OF_SEEDS, {"seed": (_KEY, sorted(set(keys)))}):
        producer = ProducerRow.from_sql(row)
        out.setdefault(producer.key, []).append(producer)
    return out


def preferred(rows: Sequence[ProducerRow]) -> ProducerRow | None:
    """Return the producer lineage follows (see the module docstring), or ``None`` if there is none."""
    newest_first = sorted(rows, key=lambda r: r.last_at, reverse=True)
    return min(newest_first, key=lambda r: (r.passed_on, r.standing)) if newest_first else None


def pick(rows: Sequence[ProducerRow], mode: str = PREFERRED, before: str | None = None) -> list[ProducerRow]:
    """Return the producers of one version a lineage query follows: every one (``mode="all"``),
    or the preferred one among those that had produced it ``before`` a moment (a use: a run that
    made the same bytes only afterwards did not make what that run received), if any did."""
    if mode == ALL:
        return list(rows)
    earlier = [r for r in rows if r.first_at < before] if before is not None else []
    best = preferred(earlier or rows)
    return [best] if best is not None else []


def chosen(catalog: Catalog, keys: Iterable[tuple[str, int]], mode: str = PREFERRED) -> dict[tuple[str, int], list[ProducerRow]]:
    """Return the producers a lineage query follows for each version: the preferred one, or all (``mode="all"``)."""
    return {key: found for key, rows in of(catalog, keys).items() if (found := pick(rows, mode))}


def credited(catalog: Catalog, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], set[str]]:
    """Return the producers a lineage query may go through for each version: its preferred
    producer now, and for each run that used it the producer preferred at the moment of that use."""
    keys = set(keys)
    found = of(catalog, keys)
    out = {key: {p.run for p in pick(rows)} for key, rows in found.items()}
    uses = catalog.fetch_with("SELECT u.name, u.number, u.at FROM seed k JOIN uses u ON u.name = k.name AND u.number = k.number",
                              {"seed": (_KEY, sorted(keys))})
    for name, number, at in uses:
        key = (name, int(number))
        out.setdefault(key, set()).update(p.run for p in pick(found.get(key, []), PREFERRED, at))
    return out


def runs_of(catalog: Catalog, name: str, number: int) -> list[str]:
    """Return the ids of every run that produced ``name:v<number>``, oldest first."""
    return [r[0] for r in catalog.fetch(
        "SELECT run FROM producers WHERE name = ? AND number = ? ORDER BY first_at, run", (name, number))]


def inside(catalog: Catalog, run_ids: Iterable[str], outer: str) -> bool:
    """Tell whether one of ``run_ids`` ran inside the run ``outer`` (not ``outer`` itself)."""
    ids = [(i,) for i in run_ids if i != outer]
    return bool(catalog.fetch_with("SELECT 1 FROM among a JOIN run_scope s ON s.run = a.run WHERE s.scope = ? LIMIT 1",
                                   {"among": (("run",), ids)}, (outer,)))


def roots(catalog: Catalog, run_ids: Iterable[str]) -> set[str]:
    """Return the outermost runs around these runs (a run with nothing around it is its own root).

    An implicit run's next segment counts as inside the segment before it.
    """
    return {r[0] for r in catalog.fetch_with(
        "SELECT DISTINCT s.scope FROM among a JOIN run_scope s ON s.run = a.run WHERE NOT EXISTS "
        "(SELECT 1 FROM run_scope o WHERE o.run = s.scope AND o.scope != s.scope)", {"among": (("run",), [(i,) for i in run_ids])})}


def handoff(catalog: Catalog, candidates: Sequence[VersionRow], upstream: Iterable[str], scope: Iterable[str]) -> VersionRow:
    """Choose which of several live versions holding the same content a run receives.

    In order: the version produced last by one of the ``upstream`` runs (or a run inside one);
    then the version produced last inside the ``scope`` runs (the caller's own top-level run);
    then the first candidate (the oldest with that content).

    :param candidates: the live versions with the content, as :func:`plait.index.versions.by_content` orders them.
    """
    if len(candidates) > 1:
        keys = [c.key for c in candidates]
        for runs in (list(upstream), list(scope)):
            if runs:
                found = _produced_inside(catalog, keys, runs)
                if found is not None:
                    return next(c for c in candidates if c.key == found)
    return candidates[0]


def _produced_inside(catalog: Catalog, keys: list[tuple[str, int]], runs: list[str]) -> tuple[str, int] | None:
    found = catalog.fetch_with(
        "SELECT p.name, p.number, p.last_at FROM seed k JOIN producers p ON p.name = k.name AND p.number = k.number "
        "JOIN run_scope s ON s.run = p.run JOIN among a ON a.run = s.scope", {"seed": (_KEY, keys), "among": (("run",), [(r,) for r in runs])})
    newest = max(found, key=lambda r: r[2], default=None)
    return (newest[0], int(newest[1])) if newest else None
