"""Durations (``30d``, ``12h``, ``1w2d``) and moments (``2026-11-01``, ``7d`` ago) as users write them.

Times are compared as plait stores them: ISO UTC text, ``2026-11-01T12:00:00.000000Z``, which
sorts as it reads.
"""

from __future__ import annotations

import datetime as _dt
import re

from plait.errors import InvalidInputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
#: The longest duration plait takes (a TTL of a thousand years is a typo).
MAX_DURATION = _dt.timedelta(days=365 * 100)


def parse_duration(text: str | float | _dt.timedelta, *, what: str = "duration") -> _dt.timedelta:
    """Return the duration ``text`` says: ``30d``, ``12h``, ``90m``, ``1w2d``, ``45s``, or seconds as a number.

    :param what: how to call it in the message.
    :raises InvalidInputError: for anything else, a negative or zero duration, or one over 100 years.
    """
    if isinstance(text, _dt.timedelta):
        delta = text
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        delta = _dt.timedelta(seconds=text)
    elif isinstance(text, str) and text.strip().startswith("-") and _DURATION.fullmatch(text.strip()[1:].lower()):
        raise InvalidInputError(f"{what} {text!r} is in the past: give a positive duration, like 30d")
    elif isinstance(text, str) and _DURATION.fullmatch(text.strip().lower()):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text.strip().lower()))
        delta = _dt.timedelta(seconds=seconds)
    else:
        raise InvalidInputError(f"{what} {text!r} is not a duration: write a number and a unit, like 30d, 12h, "
                                "90m, 1w2d (s, m, h, d, w)")
    if delta <= _dt.timedelta(0):
        raise InvalidInputError(f"{what} {text!r} is not in the future: give a positive duration, like 30d")
    if delta > MAX_DURATION:
        raise InvalidInputError(f"{what} {text!r} is longer than 100 years; give a shorter one, like 365d")
    return delta


def now() -> _dt.datetime:
    """Return the current UTC time."""
    return _dt.datetime.now(_dt.timezone.utc)


def iso(moment: _dt.datetime) -> str:
    """Return ``moment`` as plait stores times: ``2026-11-01T12:00:00.000000Z`` (UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_moment(text: str | _dt.datetime | _dt.date, *, what: str = "time") -> str:
    """Return the ISO UTC time ``text`` names: an ISO date or time (``2026-11-01``,
    ``2026-11-01T12:00``, with or without a zone; UTC if none), or a duration ago (``7d``).

    :param what: how to call it in the message.
    :raises InvalidInputError: for anything else.
    """
    if isinstance(text, _dt.datetime):
        return iso(text)
    if isinstance(text, _dt.date):
        return iso(_dt.datetime(text.year, text.month, text.day, tzinfo=_dt.timezone.utc))
    if isinstance(text, str) and _DURATION.fullmatch(text.strip().lower()):
        return iso(now() - parse_duration(text, what=what))
    try:
        moment = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidInputError(f"{what} {text!r} is neither a date nor a duration: write 2026-11-01, "
                                "2026-11-01T12:00:00Z or 7d (seven days ago)")
    return iso(moment)


def parse_iso(text: str) -> _dt.datetime:
    """Return a time plait stored (``2026-11-01T12:00:00.000000Z``) as an aware datetime.

    :raises ValueError: if it is not one.
    """
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
