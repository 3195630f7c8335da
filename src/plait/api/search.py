"""``find``: search the versions of a store from its index (see :mod:`plait.index.search`)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from plait.base.times import parse_moment
from plait.errors import InvalidInputError
from plait.formats.names import check_name, check_tag
from plait.formats.query import parse_condition, parse_sort
from plait.index import search as S
from plait.tracking.nodes import ArtifactVersion

if TYPE_CHECKING:
    from plait.store.base import BaseStore

#: The most versions one page may hold.
MAX_LIMIT = 10_000


class Found(list[ArtifactVersion]):
    """One page of the versions :func:`find` selected: a list, with where it sits in all of them.

    :ivar total: how many versions match in all.
    :ivar offset: how many were skipped before this page.
    :ivar limit: the page size asked for (``None``: no limit).
    """

    total: int
    offset: int
    limit: int | None

    def __init__(self, versions: Iterable[ArtifactVersion], total: int, offset: int, limit: int | None) -> None:
        super().__init__(versions)
        self.total, self.offset, self.limit = total, offset, limit

    @property
    def more(self) -> bool:
        """Whether versions match past this page."""
        return self.offset + len(self) < self.total

    def to_dict(self) -> dict[str, Any]:
        """Return the page as JSON: ``versions``, ``total``, ``offset``, ``limit``."""
        return {"versions": [v.to_dict() for v in self], "total": self.total, "offset": self.offset, "limit": self.limit}


def _many(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def find(store: BaseStore, *, type: str | Iterable[str] | None = None, name: str | Iterable[str] | None = None,
         tag: str | Iterable[str] | None = None, alias: str | Iterable[str] | None = None,
         where: str | Iterable[str] | None = None, created_after: str | _dt.datetime | None = None,
         created_before: str | _dt.datetime | None = None, sort: str | Iterable[str] | None = None,
         limit: int | None = None, offset: int = 0, deleted: bool = False, digest: str | None = None) -> Found:
    """Return the versions that match every filter, newest first unless ``sort`` says otherwise.

    :param type: any of these types.
    :param name: any of these names; ``ckpt-*`` is a glob.
    :param tag: carrying every one of these tags.
    :param alias: pointed at by any of these aliases (``latest``: each name's latest version).
    :param where: every one of these conditions, like ``metrics.accuracy>0.9`` (see
        :mod:`plait.formats.query`).
    :param created_after: logged after this time: ``2026-11-01``, an ISO time, a datetime, or ``7d`` (ago).
    :param created_before: logged before this time.
    :param sort: sort keys, like ``-metrics.accuracy`` (descending) or ``name``.
    :param limit: at most this many (``None``: all, up to :data:`MAX_LIMIT` per page).
    :param offset: skip this many first.
    :param deleted: include deleted versions.
    :param digest: only versions with this manifest digest.
    :returns: the page (a list) with ``.total``.
    :raises InvalidInputError: for a malformed condition, sort key, time, name, tag or page.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT):
        raise InvalidInputError(f"limit {limit!r} must be a whole number from 1 to {MAX_LIMIT}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInputError(f"offset {offset!r} must be a whole number, 0 or more")
    for n in _many(name):
        if not any(c in n for c in "*?["):
            check_name(n)
    query = S.Query(
        types=_many(type), names=_many(name), tags=tuple(check_tag(t) for t in _many(tag)), aliases=_many(alias),
        where=tuple(parse_condition(w) for w in _many(where)),
        created_after=None if created_after is None else parse_moment(created_after, what="created_after"),
        created_before=None if created_before is None else parse_moment(created_before, what="created_before"),
        digest=digest, deleted=deleted, sort=tuple(parse_sort(s) for s in _many(sort)),
        limit=MAX_LIMIT if limit is None else limit, offset=offset,
    )
    rows, total = S.find(store.catalog, query)
    return Found(ArtifactVersion.from_rows(store, rows), total, offset, limit)
