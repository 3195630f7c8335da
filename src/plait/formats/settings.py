"""Store settings: policy every user of a store shares, and the keys plait knows.

A store setting is a ``setting.set`` event (``{"key", "value", "old"}``; a ``null`` value
unsets it) folded into the index like an alias: the event with the greatest id wins. Anyone
who can write the bucket can write one, so a store setting may only make plait stricter or
describe shared policy (which references to follow, protected aliases, retention, webhooks);
it never lets a reader read its own files or reach a URL. What this machine may read is a user
setting (:mod:`plait.base.usersettings`).

Keys are dotted lowercase words (:func:`~plait.formats.records.check_setting_key`); values are
JSON. A key plait knows is checked when it is set, and again when it is read: a hand-written
event with a bad value makes plait as strict as that setting can make it, never laxer. Other
keys are kept as free-form JSON for plugins and later features; :func:`register_setting` adds a
known key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plait.base.places import parse_place
from plait.errors import InvalidNameError, SettingsError
from plait.formats.names import check_alias, check_name
from plait.formats.records import MAX_RECORD_BYTES, check_json, check_setting_key
from plait.formats.retention import RETENTION, check_retention

#: A setting's value may take at most this much JSON (the event also carries the old value).
MAX_SETTING_BYTES = MAX_RECORD_BYTES // 4

REFERENCES_ALLOW = "references.allow"
ALIASES_PROTECTED = "aliases.protected"


@dataclass(frozen=True)
class SettingSpec:
    """A store setting plait knows.

    :ivar key: its dotted key.
    :ivar doc: what it does, one line (``plait config`` shows it).
    :ivar check: returns the value to use, or raises :class:`ValueError` saying what is wrong.
    """

    key: str
    doc: str
    check: Callable[[Any], Any]


KNOWN: dict[str, SettingSpec] = {}


@dataclass(frozen=True)
class SettingChange:
    """One change of a store setting, as its history shows it.

    :ivar time: ISO UTC time.
    :ivar key: the setting.
    :ivar value: the new value (``None``: unset).
    :ivar old: the value before.
    :ivar user: who changed it.
    :ivar run: the run it was changed in, if any.
    """

    time: str
    key: str
    value: Any
    old: Any
    user: str
    run: str | None = None

    def __str__(self) -> str:
        new = "unset" if self.value is None else f"= {json.dumps(self.value)}"
        return f"{self.time}  {self.key} {new} (was {json.dumps(self.old)})  by {self.user}"


def register_setting(key: str, doc: str, check: Callable[[Any], Any]) -> SettingSpec:
    """Make ``key`` a known store setting whose values ``check`` validates.

    :param key: a dotted lowercase key.
    :param doc: what it does, one line.
    :param check: called with a non-null value; returns it (or a normal form) or raises ``ValueError``.
    :returns: the spec.
    """
    spec = SettingSpec(check_setting_key(key), doc, check)
    KNOWN[key] = spec
    return spec


def check_setting(key: str, value: Any) -> Any:
    """Return the value to store for ``key``, or raise saying what is wrong.

    :param value: any JSON value; ``None`` unsets the setting.
    :raises SettingsError: for a malformed key, a value that is not JSON or is too large, or a
        value a known key does not take.
    """
    try:
        check_setting_key(key)
    except InvalidNameError as exc:
        raise SettingsError(str(exc), source=f"store setting {str(key)[:140]}") from None
    if value is None:
        return None
    try:
        check_json(value, what=f"the value of {key}")
    except ValueError as exc:
        raise SettingsError(str(exc), source=f"store setting {key}") from None
    size = len(json.dumps(value))
    if size > MAX_SETTING_BYTES:
        raise SettingsError(f"the value of {key} is {size} bytes of JSON; a setting may hold {MAX_SETTING_BYTES}",
                            source=f"store setting {key}")
    spec = KNOWN.get(key)
    if spec is None:
        return value
    try:
        return spec.check(value)
    except ValueError as exc:
        raise SettingsError(f"{key}: {exc}", source=f"store setting {key}") from None


def _places(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of URL prefixes and local folders, like ["s3://team-data/", "/mnt/shared"]')
    for entry in value:
        try:
            parse_place(entry)
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a URL prefix or folder ({exc})") from None
    return value


register_setting(
    REFERENCES_ALLOW,
    "follow only references under these URL prefixes or folders (narrows what each reader allows; [] follows none)",
    _places,
)


def _protected(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of aliases ("production": on every artifact) or NAME:ALIAS ("classifier:production")')
    for entry in value:
        name, _, alias = entry.rpartition(":")
        try:
            check_alias(alias)
            if name:
                check_name(name)
        except InvalidNameError as exc:
            raise ValueError(f"{entry!r} is not an alias or NAME:ALIAS ({exc})") from None
    return value


register_setting(
    ALIASES_PROTECTED,
    "aliases only an admin moves in the dashboard, and Python or the CLI only with force_protected / --protected",
    _protected,
)


def protects(value: Any, name: str, alias: str) -> bool:
    """Tell whether the ``aliases.protected`` value ``value`` protects ``alias`` of artifact ``name``.

    A malformed value (a hand-written event) protects every alias: as strict as the setting can be.

    :param value: the setting's value (``None``: not set, nothing is protected).
    """
    if value is None:
        return False
    try:
        entries = _protected(value)
    except ValueError:
        return True
    return alias in entries or f"{name}:{alias}" in entries
WEBHOOK_URLS = "webhooks.urls"
WEBHOOK_EVENTS = "webhooks.events"
#: The event kinds a webhook may be sent for (see :mod:`plait.webhooks`).
WEBHOOK_KINDS = ("alias.set", "alias.removed", "tags.changed", "version.updated", "version.deleted")
MAX_WEBHOOKS = 20


def _webhook_urls(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of http(s) URLs, like ["https://deploy.example.com/plait"]')
    if len(value) > MAX_WEBHOOKS:
        raise ValueError(f"holds {len(value)} URLs; at most {MAX_WEBHOOKS}")
    for url in value:
        try:
            place = parse_place(url) if "://" in url else None
        except ValueError as exc:
            raise ValueError(f"{url[:100]!r} is not a URL ({exc})") from None
        if place is None or place.scheme not in ("http", "https") or not place.host or len(url) > 2048:
            raise ValueError(f"{url[:100]!r} is not an http(s) URL with a host")
    return value


def _webhook_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or any(v not in WEBHOOK_KINDS for v in value):
        raise ValueError(f"must be a non-empty list of event kinds among {', '.join(WEBHOOK_KINDS)}")
    return value


register_setting(WEBHOOK_URLS, "POST each alias move, tag change, edit and deletion to these URLs (each user allows "
                 "them under [webhooks] in their own settings)", _webhook_urls)
register_setting(WEBHOOK_EVENTS, "send webhooks only for these event kinds (default: all)", _webhook_events)

register_setting(RETENTION, "per artifact name, which versions `plait gc --delete` may expire "
                 "(set with `plait retain NAME --keep-last N --older-than 30d`)", check_retention)
