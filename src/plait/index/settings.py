"""Queries about store settings: their current values (folded from ``setting.set`` events) and history."""

from __future__ import annotations

import json
from typing import Any

from plait.formats.records import SETTING_SET
from plait.index.catalog import Catalog
from plait.index.rows import EventRow


def every(catalog: Catalog) -> dict[str, Any]:
    """Return every setting that is set, by key."""
    return {k: json.loads(v) for k, v in catalog.fetch("SELECT key, value FROM settings WHERE value IS NOT NULL ORDER BY key")}


def value(catalog: Catalog, key: str) -> tuple[bool, Any]:
    """Return ``(True, value)`` for a setting that is set, else ``(False, None)``."""
    found = catalog.fetch("SELECT value FROM settings WHERE key = ? AND value IS NOT NULL", (key,))
    return (True, json.loads(found[0][0])) if found else (False, None)


def history(catalog: Catalog, key: str | None = None) -> list[EventRow]:
    """Return the ``setting.set`` events (of one key, or all), oldest first."""
    sql = f"SELECT {EventRow.select()} FROM events WHERE kind = ?"
    params: tuple[Any, ...] = (SETTING_SET,)
    if key is not None:
        sql += " AND json_extract(data, '$.key') = ?"
        params += (key,)
    return [EventRow.from_sql(r) for r in catalog.fetch(sql + " ORDER BY id", params)]
