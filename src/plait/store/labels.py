"""Tags and expiry of versions: each change one event, written only after it is checked.

A tag labels any number of versions (``eu``, ``reviewed``, ``keep``) and never moves on its own,
unlike an alias; an expiry (a TTL) says when ``plait gc`` may delete a version (see
:mod:`plait.ops.retention`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

from plait.base.times import iso, now, parse_duration
from plait.errors import InvalidInputError, NotFoundError
from plait.formats import records as R
from plait.formats.names import MAX_TAGS, check_tags
from plait.index import tags as T
from plait.store.base import BaseStore


def change_tags(store: BaseStore, name: str, number: int, *, add: Iterable[str] = (), remove: Iterable[str] = (),
                run: str | None = None) -> bool:
    """Put tags on and take tags off ``name:v<number>`` in one event; return whether anything changed.

    :param add: tags to put on (those already on it are left alone).
    :param remove: tags to take off.
    :raises InvalidNameError: for a malformed tag, or more than :data:`MAX_TAGS` on the version.
    :raises InvalidInputError: for a tag both added and removed, or no tag at all.
    :raises NotFoundError: for a tag to remove that is not on the version (listing its tags).
    """
    adding = check_tags(add if isinstance(add, str) else list(add))
    removing = check_tags(remove if isinstance(remove, str) else list(remove))
    if not adding and not removing:
        raise InvalidInputError("give at least one tag to add or remove")
    both = sorted(set(adding) & set(removing))
    if both:
        raise InvalidInputError(f"tag {both[0]!r} is both added and removed; say which")
    current = set(T.of_version(store.catalog, name, number))
    missing = [t for t in removing if t not in current]
    if missing:
        has = ", ".join(sorted(current)) or "none"
        raise NotFoundError(f"{name}:v{number} has no tag {missing[0]!r} (its tags: {has})", name=missing[0],
                            candidates=sorted(current))
    added = [t for t in adding if t not in current]
    if len(current) + len(added) - len(removing) > MAX_TAGS:
        raise InvalidInputError(f"{name}:v{number} would carry more than {MAX_TAGS} tags; remove some first")
    if not added and not removing:
        return False
    store.write_event(R.TAGS_CHANGED, {"name": name, "number": number, "added": added, "removed": removing}, run=run)
    return True


def set_ttl(store: BaseStore, name: str, number: int, ttl: str | float | _dt.timedelta | None,
            *, run: str | None = None) -> str | None:
    """Make ``name:v<number>`` expire ``ttl`` from now (``None``: never); return when, as ISO UTC time.

    An expired version is deleted by the next ``plait gc --delete`` unless an alias points at it.

    :param ttl: ``30d``, ``12h``, ``1w2d``, seconds, a :class:`datetime.timedelta`, or ``None``.
    :raises InvalidInputError: for a duration that is malformed, zero or negative (in the past).
    """
    expires_at = None if ttl is None else iso(now() + parse_duration(ttl, what="TTL"))
    store.write_event(R.EXPIRY_SET, {"name": name, "number": number, "expires_at": expires_at}, run=run)
    return expires_at


def expires_at(store: BaseStore, name: str, number: int) -> str | None:
    """Return when ``name:v<number>`` expires (ISO UTC time), or ``None`` if it has no TTL."""
    return T.expiries(store.catalog, [(name, number)]).get((name, number))
