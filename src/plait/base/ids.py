"""Identifiers and clocks: monotonic ULIDs for runs and events, and UTC timestamps.

Event order decides which alias move wins, so ULIDs made by one process must sort in the order
they were made, also within one millisecond: :func:`new_ulid` bumps the random part when the
clock has not moved (the ULID spec's monotonic mode).

Making an id costs no system call: the 80 random bits come from a generator seeded once per
process from ``os.urandom`` (and again in a forked child): in a process with busy threads (a
Prefect flow has several) every system call can wait a switch interval to get the GIL back.
"""

from __future__ import annotations

import datetime as _dt
import os
import random
import re
import threading
import time

#: Crockford's base 32, the ULID alphabet.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = 0
_random = random.Random(os.urandom(32))


def _reseed() -> None:
    global _last, _random
    _last = 0
    _random = random.Random(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)  # a child must not repeat its parent's ids


def new_ulid() -> str:
    """Return a new ULID string, greater than every ULID this process made before."""
    global _last
    with _lock:
        value = (time.time_ns() // 1_000_000) << _RANDOM_BITS | _random.getrandbits(_RANDOM_BITS)
        if value <= _last:
            value = _last + 1
        _last = value
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


def random_suffix() -> str:
    """Return 12 random hex digits for temporary names (no system call; see the module docstring)."""
    with _lock:
        return f"{_random.getrandbits(48):012x}"


_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def is_ulid(text: str) -> bool:
    """Tell whether ``text`` is a ULID in its canonical form (26 Crockford base-32 characters)."""
    return bool(_ULID.fullmatch(text))


def ulid_time(ulid: str) -> _dt.datetime:
    """Return the UTC time encoded in a ULID."""
    from ulid import ULID  # here: importing it costs ~0.1 s (importlib.metadata), which reading commands skip

    return ULID.from_str(ulid).datetime


def utcnow() -> str:
    """Return the current UTC time as ISO 8601 text with microseconds and ``Z``."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
