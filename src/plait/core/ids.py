"""Identifiers and clocks: monotonic ULIDs for runs and events, and UTC timestamps.

Event order decides which alias move wins, so ULIDs made by one process must sort in the order
they were made, also within one millisecond: :func:`new_ulid` bumps the random part when the
clock has not moved (the ULID spec's monotonic mode).
"""

from __future__ import annotations

import datetime as _dt
import threading

from ulid import ULID

_lock = threading.Lock()
_last = 0


def new_ulid() -> str:
    """Return a new ULID string, greater than every ULID this process made before."""
    global _last
    with _lock:
        value = int.from_bytes(ULID().bytes, "big")
        if value <= _last:
            value = _last + 1
        _last = value
    return str(ULID.from_int(value))


def ulid_time(ulid: str) -> _dt.datetime:
    """Return the UTC time encoded in a ULID."""
    return ULID.from_str(ulid).datetime


def utcnow() -> str:
    """Return the current UTC time as ISO 8601 text with microseconds and ``Z``."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
