"""The lineage walks over ``uses``, ``producers`` and ``run_scope``, safe on any graph.

One step goes from a version to the versions its producing run used (upstream), or from a
version to the versions made by the runs that used it (downstream); depth counts these steps.
Which runs produced a version is :mod:`plait.index.producers`: by default the walks follow the
preferred producer, with ``mode="all"`` every producer.

What a run's output is made from:

- what the run used *before* it logged the output: a run that logs ``a``, then uses ``b`` made
  from ``a``, did not make ``a`` from ``b``;
- what the runs around it (``run_scope``: a Prefect task around a Lightning fit, a flow around
  its tasks, an implicit run's earlier segment) had used before it started.

And what a run received was made by a run that had produced it *before* the use: going
upstream from a use, the preferred producer is chosen among those (a later rerun that made the
same bytes did not make what an earlier run received).

The walks go breadth first and follow each (version, producer) pair once, so a cycle (a run that
uses what was made from its own outputs records the use) or a chain thousands of runs deep ends,
and each version is reported at its shortest distance. Each step is one query for the frontier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from plait.index import producers as P
from plait.index.catalog import Catalog

Key = tuple[str, int]

#: ``(name, number, moment of the use)`` of what the stepped runs' outputs were made from (``step``:
#: a producing run and the moment of its production).
_INPUTS = """
SELECT u.name, u.number, u.at FROM step t
JOIN run_scope s ON s.run = t.run
JOIN uses u ON u.run = s.scope
LEFT JOIN runs r ON r.id = t.run
WHERE u.at < t.at AND (s.scope = t.run OR u.at < r.started_at)
"""

#: ``(name, number, run)`` of what runs made after they (or a run around them) used something
#: (``used``: the using run and the moment of the use).
_MADE_AFTER = """
SELECT DISTINCT p.name, p.number, p.run FROM used t
JOIN run_scope s ON s.scope = t.run
LEFT JOIN runs r ON r.id = s.run
JOIN producers p ON p.run = s.run
WHERE t.at < p.last_at AND (s.run = t.run OR t.at < r.started_at)
"""


@dataclass
class Walk:
    """What a walk found.

    :ivar versions: ``{(name, number): steps away}`` (the seeds at 0).
    :ivar made_by: ``{(name, number): run ids}``: the producers the walk went through.
    :ivar runs: every run the walk went through: those producers and, downstream, the runs that
        used what it found.
    """

    versions: dict[Key, int] = field(default_factory=dict)
    made_by: dict[Key, set[str]] = field(default_factory=dict)
    runs: set[str] = field(default_factory=set)


def upstream(catalog: Catalog, seeds: Iterable[Key | tuple[Key, str | None]], depth: int | None,
             mode: str = P.PREFERRED) -> Walk:
    """Walk to every version the seeds were made from.

    :param seeds: versions, or ``(version, moment of a use)`` pairs for versions a run received.
    :param depth: the most steps to take (``None``: all).
    :param mode: follow the preferred producer (``"preferred"``) or every one (``"all"``).
    """
    frontier = {_seed(s) for s in seeds}
    walk = Walk(versions={key: 0 for key, _ in frontier})
    followed: set[tuple[Key, str]] = set()
    level = 0
    while frontier and (depth is None or level < depth):
        found = P.of(catalog, {key for key, _ in frontier})
        steps = set()
        for key, before in frontier:
            for p in P.pick(found.get(key, []), mode, before):
                walk.made_by.setdefault(key, set()).add(p.run)
                walk.runs.add(p.run)
                if (key, p.run) not in followed:
                    followed.add((key, p.run))
                    steps.add((p.run, p.last_at))
        level += 1
        inputs = [((n, int(v)), at) for n, v, at in catalog.fetch_with(_INPUTS, {"step": (("run", "at"), sorted(steps))})]
        for key, _ in inputs:
            walk.versions.setdefault(key, level)
        frontier = set(inputs)
    return walk


def downstream(catalog: Catalog, seeds: Iterable[Key], depth: int | None, mode: str = P.PREFERRED) -> Walk:
    """Walk to every version made from the seeds, and the runs that used them.

    :param depth: the most steps to take (``None``: all).
    :param mode: as for :func:`upstream`: with ``"preferred"``, a run that used a version counts
        as using what one producer made only if an upstream walk from that use would go through
        that producer, and a version counts as made by a run only if some upstream walk would
        credit that run (see :func:`plait.index.producers.credited`).
    """
    walk = Walk(versions={key: 0 for key in seeds})
    frontier: set[tuple[Key, str | None]] = {(key, None) for key in walk.versions}  # (version, the producer it came from)
    followed: set[tuple[Key, str | None]] = set()
    level = 0
    while frontier and (depth is None or level < depth):
        followed |= frontier
        via: dict[Key, set[str | None]] = {}
        for key, run in frontier:
            via.setdefault(key, set()).add(run)
        producers = P.of(catalog, via) if mode != P.ALL else {}
        uses = catalog.fetch_with("SELECT u.name, u.number, u.run, u.at FROM seed k JOIN uses u ON u.name = k.name "
                                  "AND u.number = k.number", {"seed": (("name", "number"), sorted(via))})
        kept = set()
        for name, number, run, at in uses:
            key = (name, int(number))
            credited = {p.run for p in P.pick(producers.get(key, []), P.PREFERRED, at)} if mode != P.ALL else set()
            if mode == P.ALL or None in via[key] or credited & via[key]:
                kept.add((run, at))
                walk.runs.add(run)
        made = [((n, int(v)), run) for n, v, run in catalog.fetch_with(_MADE_AFTER, {"used": (("run", "at"), sorted(kept))})]
        if mode != P.ALL:
            follow = P.credited(catalog, {key for key, _ in made})
            made = [(key, run) for key, run in made if run in follow.get(key, ())]
        level += 1
        for key, run in made:
            walk.made_by.setdefault(key, set()).add(run)
            walk.runs.add(run)
            walk.versions.setdefault(key, level)
        frontier = {(key, run) for key, run in made} - followed
    return walk


def _seed(seed: Key | tuple[Key, str | None]) -> tuple[Key, str | None]:
    first = seed[0]
    if isinstance(first, tuple):
        return (first[0], int(first[1])), seed[1]  # type: ignore[return-value]
    return (str(first), int(seed[1])), None  # type: ignore[arg-type]


def used_by_run(catalog: Catalog, run_id: str) -> list[tuple[Key, str]]:
    """Return ``((name, number), moment of the use)`` of what one run used."""
    return [((n, int(v)), at) for n, v, at in catalog.fetch("SELECT name, number, at FROM uses WHERE run = ?", (run_id,))]


def logged_by_run(catalog: Catalog, run_id: str) -> list[Key]:
    """Return ``(name, number)`` of what one run logged (made, or logged again)."""
    return [(n, int(v)) for n, v in catalog.fetch("SELECT name, number FROM producers WHERE run = ?", (run_id,))]


def derived_from_run(catalog: Catalog, run_id: str, name: str, number: int) -> bool:
    """Tell whether ``name:v<number>`` was made, through any producer, from something ``run_id`` logged."""
    walk = upstream(catalog, [(name, number)], None, P.ALL)
    return any(run_id in runs for runs in walk.made_by.values())
