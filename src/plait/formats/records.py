"""The immutable JSON records a store holds besides blobs and manifests: versions and events.

A version record is created once, exclusively, at ``versions/<name>/<number>``; it never
changes. Everything that happens afterwards — runs starting and finishing, versions used and
logged, a version produced again by another run (the same content logged again), aliases
moving, notes and metadata edited, versions deleted — is an :class:`Event`, one immutable record
each at ``events/<yyyy-mm-dd>/<ulid>``. The index folds them in ULID order.

Records read back from a store are validated here: a crafted or damaged record becomes a
:class:`CorruptRecordError`, never an exception from deep inside.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plait.errors import CorruptRecordError, InvalidMetadataError, InvalidNameError
from plait.formats.names import MAX_TAGS, check_name
from plait.storage.digest import XXH3_128

M = TypeVar("M", bound=BaseModel)

RECORD_FORMAT = 1
#: A record larger than this is refused when written and when read back (metadata is meant to be small).
MAX_RECORD_BYTES = 16 << 20

RUN_STARTED = "run.started"
RUN_FINISHED = "run.finished"
VERSION_LOGGED = "version.logged"
VERSION_USED = "version.used"
VERSION_PRODUCED = "version.produced"
ALIAS_SET = "alias.set"
ALIAS_REMOVED = "alias.removed"
VERSION_UPDATED = "version.updated"
VERSION_DELETED = "version.deleted"
SETTING_SET = "setting.set"
TAGS_CHANGED = "tags.changed"
EXPIRY_SET = "expiry.set"
EVENT_KINDS = (
    RUN_STARTED,
    RUN_FINISHED,
    VERSION_LOGGED,
    VERSION_USED,
    VERSION_PRODUCED,
    ALIAS_SET,
    ALIAS_REMOVED,
    VERSION_UPDATED,
    VERSION_DELETED,
    SETTING_SET,
    TAGS_CHANGED,
    EXPIRY_SET,
)


def check_json(value: Any, what: str = "metadata", *, max_depth: int | None = None) -> Any:
    """Return ``value`` if it can be stored in a record and read back unchanged, else raise.

    Every reader must be able to parse what a writer stores, so this refuses what JSON or the
    record parser cannot carry: values that are not JSON, keys that are not strings, text that
    is not valid UTF-8 (a lone surrogate, as a shell passes undecodable bytes), and nesting
    deeper than :data:`MAX_JSON_DEPTH`.

    :param value: the value to check.
    :param what: how to call it in the message.
    :param max_depth: how deep it may nest (default :data:`MAX_JSON_DEPTH`).
    :returns: ``value``.
    :raises InvalidMetadataError: naming the first key that breaks a rule.
    """
    _check_tree(value, what, MAX_JSON_DEPTH if max_depth is None else max_depth)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMetadataError(
            f"{what} must be JSON-serializable (str, int, float, bool, None, list, dict with str keys): {exc}"
        ) from None
    return value


#: How deep metadata, a config or a summary may nest (the record parser stops at 200 levels,
#: and an event holds metadata a few levels down).
MAX_JSON_DEPTH = 64


def _check_tree(value: Any, what: str, max_depth: int) -> None:
    """Refuse non-string keys, text that is not UTF-8 and nesting deeper than :data:`MAX_JSON_DEPTH`."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, str):
            check_text(item, f"{what}{where}")
            continue
        if not isinstance(item, (dict, list, tuple)):
            continue
        if depth >= max_depth:
            raise InvalidMetadataError(f"{what}{where} nests more than {max_depth} levels deep; flatten it")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):  # json.dumps would quietly turn int keys into strings
                    raise InvalidMetadataError(f"{what} must be JSON with string keys; got key {key!r}: use str({key!r})")
                check_text(key, f"the key {key!r} of {what}{where}")
                stack.append((child, depth + 1, f"{where}[{key!r}]"))
        else:
            stack.extend((child, depth + 1, f"{where}[{i}]") for i, child in enumerate(item))


def check_text(text: str, what: str = "text") -> str:
    """Return ``text`` if it is valid Unicode that UTF-8 can carry, else raise.

    :param text: the text to check.
    :param what: how to call it in the message.
    :raises InvalidMetadataError: for a lone surrogate (bytes that were not UTF-8).
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end].encode("utf-8", "surrogateescape")
            raise InvalidMetadataError(
                f"{what} is not valid UTF-8 (bytes {bad!r} at character {exc.start}); pass UTF-8 text"
            ) from None
    return text


@functools.lru_cache(maxsize=4096)  # names repeat across events: check each once
def _checked_name(value: str) -> str:
    try:
        return check_name(value)
    except InvalidNameError as exc:
        raise ValueError(str(exc)) from None


class VersionRecord(BaseModel):
    """The immutable record of one artifact version, as stored.

    :ivar name: artifact name.
    :ivar number: version number (``v3`` is 3).
    :ivar type: ``dataset``, ``model``, ``result`` or any other word.
    :ivar digest: the manifest digest.
    :ivar size: total bytes of its files.
    :ivar file_count: number of files.
    :ivar description: the description at creation time (later edits are events).
    :ivar metadata: JSON metadata at creation time.
    :ivar created_at: ISO UTC time.
    :ivar created_by: the id of the run that logged it.
    :ivar algorithm: the hash algorithm of its manifest.
    :ivar origin: where it was copied from by ``sync``: ``{"store": id, "number": n}``.
    :ivar file_digest: for a version of exactly one stored file, that file's digest, so the same
        bytes under another file name still find it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    format: int = RECORD_FORMAT
    name: str
    number: int = Field(ge=0, lt=10**18)
    type: str = Field(min_length=1, max_length=128)
    digest: str = Field(min_length=32, max_length=64, pattern=r"^[0-9a-f]+$")
    size: int = Field(ge=0)
    file_count: int = Field(ge=0)
    description: str = Field(default="", max_length=1 << 20)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(max_length=64)
    created_by: str | None = Field(default=None, max_length=64)
    algorithm: str = XXH3_128
    origin: dict[str, Any] | None = None
    file_digest: str | None = Field(default=None, min_length=32, max_length=64, pattern=r"^[0-9a-f]+$")

    _name = field_validator("name")(_checked_name)


def version_key(name: str, number: int) -> str:
    """Return the store key of a version record: ``versions/<name>/<number>``."""
    return f"versions/{name}/{number}"


def decode_version(data: bytes, name: str, number: int) -> VersionRecord:
    """Parse the record stored at ``versions/<name>/<number>``, checking it is the record of that version.

    :raises CorruptRecordError: if it cannot be read, or holds another version's record.
    """
    key = version_key(name, number)
    record: VersionRecord = decode(VersionRecord, data, key)
    if (record.name, record.number) != (name, number):
        raise CorruptRecordError(f"record {key} holds the record of {record.name}:v{record.number}", key=key)
    return record


class Event(BaseModel):
    """One immutable thing that happened in a store.

    :ivar id: a ULID; events apply in id order and the later id wins a conflict.
    :ivar kind: one of :data:`EVENT_KINDS`.
    :ivar time: ISO UTC time.
    :ivar user: who did it (the OS user unless given).
    :ivar run: the id of the run it happened in, if any.
    :ivar data: what the kind needs (see :mod:`plait.index.catalog` for each kind's fold).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    format: int = RECORD_FORMAT
    id: str = Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    kind: str
    time: str = Field(max_length=64)
    user: str = Field(default="", max_length=256)
    run: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {value!r}")
        return value

    @model_validator(mode="after")
    def _data_fits_kind(self) -> Event:
        _check_event_data(self.kind, self.data)
        if self.kind == VERSION_PRODUCED and not self.run:
            raise ValueError(f"{VERSION_PRODUCED} event needs the producing run")
        return self

    @property
    def key(self) -> str:
        """The store key of this event: ``events/<yyyy-mm-dd>/<ulid>``."""
        from plait.base.ids import ulid_time

        return f"events/{ulid_time(self.id):%Y-%m-%d}/{self.id}"


_NUMBER = (int,)
_DIGEST = re.compile(r"[0-9a-f]{32,64}")
_REQUIRED: dict[str, dict[str, tuple[type, ...]]] = {
    RUN_STARTED: {"id": (str,), "name": (str,), "kind": (str,)},
    RUN_FINISHED: {"id": (str,), "status": (str,)},
    VERSION_USED: {"name": (str,), "number": _NUMBER},
    VERSION_PRODUCED: {"name": (str,), "number": _NUMBER, "digest": (str,)},
    ALIAS_SET: {"name": (str,), "alias": (str,), "number": _NUMBER},
    ALIAS_REMOVED: {"name": (str,), "alias": (str,), "number": _NUMBER},
    VERSION_UPDATED: {"name": (str,), "number": _NUMBER, "new": (dict,)},
    VERSION_DELETED: {"name": (str,), "number": _NUMBER},
    SETTING_SET: {"key": (str,)},
    TAGS_CHANGED: {"name": (str,), "number": _NUMBER, "added": (list,), "removed": (list,)},
    EXPIRY_SET: {"name": (str,), "number": _NUMBER},
}


def _check_event_data(kind: str, data: dict[str, Any]) -> None:
    if kind == VERSION_LOGGED:
        VersionRecord.model_validate(data)
        return
    if kind == SETTING_SET:
        _check_setting_event(data)
        return
    for key, types in _REQUIRED[kind].items():
        value = data.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(f"{kind} event needs {key!r} of type {types[0].__name__}")
    if "name" in data:
        _checked_name(data["name"])
    if "alias" in data:
        _checked_name(data["alias"])
    if "number" in data and not 0 <= data["number"] < 10**18:
        raise ValueError(f"{kind} event has a version number out of range")
    if kind == VERSION_PRODUCED and not _DIGEST.fullmatch(data["digest"]):
        raise ValueError(f"{kind} event has a digest that is not 32 to 64 hex digits")
    if kind == TAGS_CHANGED:
        _check_tags_event(data)
    if kind == EXPIRY_SET:
        _check_expiry_event(data)


def _check_tags_event(data: dict[str, Any]) -> None:
    tags = [*data["added"], *data["removed"]]
    if not tags or len(tags) > 2 * MAX_TAGS:
        raise ValueError(f"{TAGS_CHANGED} event must add or remove 1 to {MAX_TAGS} tags")
    for tag in tags:
        try:
            check_name(tag, what="tag")
        except InvalidNameError as exc:
            raise ValueError(f"{TAGS_CHANGED} event: {exc}") from None
    if set(data["added"]) & set(data["removed"]):
        raise ValueError(f"{TAGS_CHANGED} event adds and removes the same tag")


#: An ISO UTC time as plait writes it (``2026-11-01T12:00:00.000000Z``), or its shorter forms.
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def _check_expiry_event(data: dict[str, Any]) -> None:
    when = data.get("expires_at", "missing")
    if when is not None and not (isinstance(when, str) and ISO_TIME.fullmatch(when)):
        raise ValueError(f"{EXPIRY_SET} event needs 'expires_at': an ISO UTC time like 2026-11-01T12:00:00Z, or null")


#: A store setting's key: dotted lowercase words (``references.allow``).
SETTING_KEY = re.compile(r"[a-z0-9_]+(\.[a-z0-9_-]+)*")
MAX_SETTING_KEY = 128


def check_setting_key(key: str) -> str:
    """Return ``key`` if it may name a store setting, else raise.

    :raises InvalidNameError: unless it is dotted lowercase words (``[a-z0-9_]+(.[a-z0-9_-]+)*``),
        at most 128 characters.
    """
    if not isinstance(key, str) or len(key) > MAX_SETTING_KEY or not SETTING_KEY.fullmatch(key):
        raise InvalidNameError(f"{str(key)[:140]!r} is not a setting key: use dotted lowercase words of at most "
                               f"{MAX_SETTING_KEY} characters, like references.allow", name=str(key)[:140])
    return key


def _check_setting_event(data: dict[str, Any]) -> None:
    if not isinstance(data.get("key"), str) or "value" not in data:
        raise ValueError("setting.set event needs 'key' (text) and 'value' (JSON, null to unset)")
    try:
        check_setting_key(data["key"])
    except InvalidNameError as exc:
        raise ValueError(str(exc)) from None


def encode(record: BaseModel) -> bytes:
    """Serialize a record as compact, key-sorted JSON."""
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def build(model: type[M], what: str, **fields: Any) -> M:
    """Make a record to store from ``fields``, refusing what a reader could not read back.

    Every field is checked before anything is written: valid values, text that UTF-8 can
    carry, nesting a reader can parse, and an encoded size within :data:`MAX_RECORD_BYTES`.

    :param model: :class:`VersionRecord` or :class:`Event`.
    :param what: what the record is, for the message (``the version record of images``).
    :returns: the record.
    :raises InvalidMetadataError: saying which rule the fields break.
    """
    for key in ("metadata", "data"):
        if key in fields:
            # an event holds metadata a few levels down: that is allowed its full depth
            check_json(fields[key], what=f"the {key} of {what}", max_depth=MAX_JSON_DEPTH + 8)
    for key in ("description", "user", "created_at", "time"):
        if isinstance(fields.get(key), str):
            check_text(fields[key], f"the {key} of {what}")
    try:
        record = model(**fields)
    except ValidationError as exc:
        raise InvalidMetadataError(f"{what} cannot be stored: {_first_error(exc)}") from None
    size = len(encode(record))
    if size > MAX_RECORD_BYTES:
        raise InvalidMetadataError(
            f"{what} would take {size:,} bytes; a record holds at most {MAX_RECORD_BYTES:,}: "
            "keep large values in files of the version, not in its metadata or description"
        )
    return record


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc).splitlines()[0]
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', '')}"[:300] if where else str(first.get("msg", ""))[:300]


def decode(model: type[BaseModel], data: bytes, key: str) -> Any:
    """Parse and validate stored record bytes.

    :raises CorruptRecordError: if they are too large, not JSON, or not a valid record.
    """
    if len(data) > MAX_RECORD_BYTES:
        raise CorruptRecordError(f"record {key} is {len(data)} bytes, more than a record may be", key=key)
    try:
        return model.model_validate_json(data)
    except (ValidationError, ValueError, RecursionError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(first[:3])[:300] if first else type(exc).__name__
        raise CorruptRecordError(f"record {key} cannot be read: {detail}", key=key) from None


def decode_events(blobs: dict[str, bytes]) -> tuple[list[Event], list[str]]:
    """Parse and validate many stored events; a damaged one is skipped, never fatal.

    :param blobs: ``{key: bytes}`` as read from the store.
    :returns: the valid events and the keys of the damaged ones (``plait verify`` reports them).
    """
    events, damaged = [], []
    for key, data in blobs.items():
        try:
            events.append(decode(Event, data, key))
        except CorruptRecordError:
            damaged.append(key)
    return events, damaged


# -- segments: the events of one old day, packed into one record by `plait compact` ---------------

#: Segments live beside the day folders: ``events/<yyyy-mm-dd>.<part>.segment``.
SEGMENT_SUFFIX = ".segment"
#: Events per segment; a busier day is packed into several parts.
SEGMENT_EVENTS = 100_000
#: A segment that inflates to more than this is refused as damaged (or a zip bomb).
MAX_SEGMENT_BYTES = 1 << 30


def segment_key(day: str, part: int) -> str:
    """Return the store key of part ``part`` of the segment of ``day`` (``yyyy-mm-dd``)."""
    return f"events/{day}.{part}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> tuple[str, int] | None:
    """Return ``(day, part)`` for a name under ``events/`` that is a segment, else ``None``."""
    if not name.endswith(SEGMENT_SUFFIX) or len(name) < 12 or name[10] != ".":
        return None
    part = name[11 : -len(SEGMENT_SUFFIX)]
    return (name[:10], int(part)) if part.isdigit() else None


def encode_segment(day: str, raw_events: list[bytes]) -> bytes:
    """Pack stored event records (their exact bytes, already validated) into one zlib record."""
    body = b'{"day":"' + day.encode() + b'","events":[' + b",".join(raw_events) + b'],"format":1}'
    return zlib.compress(body, 6)


class _Segment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    format: int = RECORD_FORMAT
    day: str = Field(max_length=10)
    events: list[Event]


def decode_segment(data: bytes, key: str) -> tuple[list[Event], int]:
    """Unpack a segment: return its valid events and how many of them were damaged.

    :raises CorruptRecordError: if the record itself cannot be inflated or parsed.
    """
    try:
        inflater = zlib.decompressobj()
        body = inflater.decompress(data, MAX_SEGMENT_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("truncated or larger than a segment may be")
    except (zlib.error, ValueError) as exc:
        raise CorruptRecordError(f"segment {key} cannot be inflated: {exc}", key=key) from None
    try:
        return list(_Segment.model_validate_json(body).events), 0
    except ValidationError:  # one bad event must not hide the others: validate them one by one
        pass
    try:
        items = json.loads(body)["events"]
        assert isinstance(items, list)
    except (ValueError, KeyError, TypeError, AssertionError, RecursionError):
        raise CorruptRecordError(f"segment {key} is not a list of events", key=key) from None
    events = []
    for item in items:
        try:
            events.append(Event.model_validate(item))
        except (ValidationError, ValueError, TypeError):
            continue
    return events, len(items) - len(events)
