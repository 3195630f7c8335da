"""compact: pack the events of old days into segments, so rebuilding an index reads a few records.

Every event is its own record (``events/<yyyy-mm-dd>/<ulid>``); a year of busy pipelines is
millions of small reads for a fresh index. :func:`compact` packs each day older than
``before_days`` into one immutable, zlib-compressed record, ``events/<yyyy-mm-dd>.<part>.segment``
(a JSON list of the day's events, exactly as they were stored), and then deletes the event files
it packed. Like a Delta Lake checkpoint, it changes what is read, never what the fold sees:

- readers fold segments first and then list the day folders as before, deduplicating by event
  id, so an event file written into a packed day later (a writer whose clock is days behind) is
  still folded — and the next ``compact`` packs it into the day's next part;
- a segment is created exclusively and never changes; two compactors racing for a day cannot
  both write part *n*: the loser reads what the winner packed and packs only the rest;
- an event file is deleted only once a segment holding its id has been read back; a damaged
  event file is never packed nor deleted (``plait verify`` reports it);
- a reader that listed an event file a compactor deleted before the read looks for the day's
  segments again (:meth:`plait.index.catalog.Catalog.sync`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from plait.errors import ConflictError, CorruptRecordError, StoreError
from plait.formats import records as R
from plait.store.base import BaseStore as Store

#: Days newer than this many days are left alone by default (writers may still be adding).
DEFAULT_BEFORE_DAYS = 2
#: Attempts to take a segment part number another compactor keeps taking first.
MAX_TRIES = 1000


@dataclass
class CompactReport:
    """What :func:`compact` did.

    :ivar days: the days that got a new segment.
    :ivar events: events packed into new segments.
    :ivar segments: segment keys created.
    :ivar deleted: event files deleted because a segment holds them.
    :ivar damaged: event files left in place because they cannot be read (see ``plait verify``).
    """

    days: list[str] = field(default_factory=list)
    events: int = 0
    segments: list[str] = field(default_factory=list)
    deleted: int = 0
    damaged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready form."""
        return {"days": self.days, "events": self.events, "segments": self.segments, "deleted": self.deleted,
                "damaged": self.damaged}


def compact(store: Store, *, before_days: int = DEFAULT_BEFORE_DAYS) -> CompactReport:
    """Pack every event of the days older than ``before_days`` (UTC) into per-day segments.

    :param store: the store to compact.
    :param before_days: leave today and the ``before_days - 1`` days before it alone.
    :returns: what was packed and deleted.
    :raises StoreError: for a negative ``before_days`` or a store that cannot be written.
    :raises ConflictError: if other compactors kept taking every part number tried.
    """
    if before_days < 0:
        raise StoreError(f"before_days must be 0 or more, not {before_days}")
    store.backend.require_writable()
    today = _dt.datetime.now(_dt.timezone.utc).date()
    cutoff = (today - _dt.timedelta(days=before_days)).isoformat()
    report = CompactReport()
    for day in sorted(d for d in store.backend.listdir("events") if len(d) == 10 and d < cutoff):
        _compact_day(store, day, report)
    return report


def _compact_day(store: Store, day: str, report: CompactReport) -> None:
    names = [n for n in store.backend.listdir(f"events/{day}") if len(n) == 26]
    if not names:
        return
    read: dict[str, set[str]] = {}  # segment name -> event ids (segments never change)
    raws: dict[str, bytes] | None = None
    for _ in range(MAX_TRIES):
        packed, parts = _packed(store, day, read)
        todo = [n for n in names if n not in packed]
        if raws is None:
            raws = _readable(store, day, todo, report)
        todo = [n for n in todo if n in raws][: R.SEGMENT_EVENTS]
        if not todo:
            break
        key = R.segment_key(day, max(parts, default=-1) + 1)
        if store.backend.create(key, R.encode_segment(day, [raws[n] for n in todo])):
            report.segments.append(key)
            report.events += len(todo)
            if day not in report.days:
                report.days.append(day)
    else:
        raise ConflictError(f"could not write a segment for {day}: other compactors took every part", key=f"events/{day}")
    packed, _ = _packed(store, day, read)  # read back: delete only what a readable segment holds
    gone = [f"events/{day}/{n}" for n in names if n in packed]
    store.backend.delete_many(gone)
    report.deleted += len(gone)


def _packed(store: Store, day: str, read: dict[str, set[str]]) -> tuple[set[str], list[int]]:
    """Return the ids held by the day's readable segments and the part numbers taken."""
    parts: dict[str, int] = {}
    for name in store.backend.listdir("events"):
        parsed = R.parse_segment_name(name)
        if parsed and parsed[0] == day:
            parts[name] = parsed[1]
    new = [n for n in parts if n not in read]
    for key, data in store.backend.read_many([f"events/{n}" for n in new]).items():
        try:
            events, _ = R.decode_segment(data, key)
        except CorruptRecordError:
            events = []  # a damaged segment vouches for nothing: its event files stay
        read[key.split("/", 1)[1]] = {e.id for e in events}
    return {i for n in parts if n in read for i in read[n]}, list(parts.values())


def _readable(store: Store, day: str, names: list[str], report: CompactReport) -> dict[str, bytes]:
    """Return ``{id: stored bytes}`` of the event files that hold a valid event with their own id."""
    out = {}
    for key, data in store.backend.read_many([f"events/{day}/{n}" for n in names]).items():
        try:
            event = R.decode(R.Event, data, key)
        except CorruptRecordError:
            report.damaged.append(key)
            continue
        if key.endswith("/" + event.id):
            out[event.id] = data
        else:
            report.damaged.append(key)  # an event filed under another id: left for verify
    return out
