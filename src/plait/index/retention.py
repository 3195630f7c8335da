"""Queries for retention: a name's live versions by when they were last logged, and the versions
whose TTL has passed."""

from __future__ import annotations

from plait.index.catalog import Catalog


def by_recency(catalog: Catalog, name: str) -> list[tuple[int, str]]:
    """Return ``(number, ISO time last logged)`` of every live version of ``name``, most recent first
    (the order that makes ``latest``: a re-log of old content counts as recent)."""
    rows = catalog.fetch("SELECT number, COALESCE(touched, created_at) FROM versions WHERE name = ? AND deleted = 0 "
                         "ORDER BY touched DESC, number DESC", (name,))
    return [(int(n), (t or "").split("|", 1)[0]) for n, t in rows]


def expired(catalog: Catalog, now: str) -> list[tuple[str, int, str]]:
    """Return ``(name, number, expires_at)`` of every live version whose TTL passed by ``now``, by name and number."""
    return [(n, int(v), at) for n, v, at in catalog.fetch(
        "SELECT e.name, e.number, e.expires_at FROM expiry e JOIN versions v ON v.name = e.name AND v.number = e.number "
        "WHERE v.deleted = 0 AND e.expires_at IS NOT NULL AND e.expires_at <= ? ORDER BY e.name, e.number", (now,))]
