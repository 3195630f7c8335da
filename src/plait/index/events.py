"""Queries about the folded event log: history, and what ``sync`` has already imported."""

from __future__ import annotations

from plait.index.catalog import Catalog
from plait.index.rows import EventRow


def of_name(catalog: Catalog, name: str) -> list[EventRow]:
    """Return every event about the versions of ``name``, oldest first."""
    return [EventRow.from_sql(r) for r in catalog.fetch(
        f"SELECT {EventRow.select()} FROM events WHERE name = ? ORDER BY id", (name,))]


def every(catalog: Catalog) -> list[EventRow]:
    """Return every folded event, oldest first."""
    return [EventRow.from_sql(r) for r in catalog.fetch(f"SELECT {EventRow.select()} FROM events ORDER BY id")]


def ids(catalog: Catalog) -> set[str]:
    """Return the id of every folded event."""
    return {r[0] for r in catalog.fetch("SELECT id FROM events")}


def imported(catalog: Catalog) -> set[str]:
    """Return the ids of the source events that ``sync`` imported (``data.origin.event``)."""
    return {r[0] for r in catalog.fetch(
        "SELECT json_extract(data, '$.origin.event') FROM events WHERE json_extract(data, '$.origin.event') IS NOT NULL")}


def of_version(catalog: Catalog, name: str, number: int) -> list[EventRow]:
    """Return the events about ``name:v<number>`` and every alias move of ``name``, oldest first."""
    return [EventRow.from_sql(r) for r in catalog.fetch(
        f"SELECT {EventRow.select()} FROM events WHERE name = ? AND (number = ? OR kind IN ('alias.set', 'alias.removed')) "
        "ORDER BY id", (name, number))]
