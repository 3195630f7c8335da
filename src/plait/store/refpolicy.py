"""Which references this machine follows, and with which options: the reader decides, never the store.

A store is written by everyone who can write its bucket, a hostile writer included. A manifest
or a store setting must therefore never make a reader read its own files or reach a URL the
reader did not allow. Before anything is read, every reference goes through
:meth:`ReferencePolicy.plan`:

- ``s3``, ``gs``, ``az`` (and ``s3a``, ``gcs``, ``abfs``, ``abfss``) are followed by default;
- ``file`` references only below a folder in the user's ``[references] allow`` (symlinks
  resolved first, so a link cannot lead out), and only regular files;
- ``http``/``https`` references, and any other scheme, only below a URL prefix in that list;
- the store setting ``references.allow`` may narrow this (a reference must then be below one of
  its prefixes as well), never widen it;
- a reference is read with the options it was recorded with (only where the data is: endpoint,
  region, account, anonymous access; any other recorded option is refused), under the user's
  options for its prefix and the command's (those win). A recorded endpoint is reached only if
  it is the store's own endpoint or below an allowed URL prefix, or the user gave their own;
- a redirect from an HTTP server is followed only to an allowed URL.

The user's list comes from the settings file, ``$PLAIT_ALLOW_REFERENCES``, ``--allow-reference``
and ``Store(allow_references=…)`` (:mod:`plait.base.usersettings`). A refused reference is a
:class:`~plait.errors.ReferenceRefusedError` naming the setting that would allow it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.base.paths import user_config_path
from plait.base.places import Place, is_under, parse_place
from plait.base.usersettings import UserSettings, deep_merge
from plait.errors import ReferenceRefusedError, SettingsError
from plait.formats.manifest import Entry
from plait.formats.reference import RECORDED_OPTIONS, expand_options, identity_key
from plait.formats.settings import REFERENCES_ALLOW, check_setting
from plait.storage.opener import open_source
from plait.storage.sources import Source, endpoint_of

if TYPE_CHECKING:
    from plait.store.base import BaseStore

#: Schemes followed without being listed: object stores reached with the reader's own credentials.
CLOUD_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})


@dataclass(frozen=True)
class Plan:
    """How one reference will be read.

    :ivar uri: what to read (a local reference: ``file://`` and the resolved path).
    :ivar scheme: its scheme.
    :ivar options: the fsspec options to read it with.
    :ivar key: its identity key with the endpoint really read from, and its checksum (names its
        cached copy).
    """

    uri: str
    scheme: str
    options: Mapping[str, Any]
    key: str


class ReferencePolicy:
    """The rules of one reader, for one store.

    :param user: this user's settings (with the command's additions).
    :param store_allow: the store's ``references.allow`` setting (``None``: not set).
    :param store_scheme: the store's own protocol.
    :param store_options: the options the store was opened with (the reader's own).
    """

    def __init__(self, user: UserSettings, store_allow: Any, store_scheme: str, store_options: Mapping[str, Any]) -> None:
        self.user = user
        self.allowed = [_allow_place(e) for e in user.allow]
        self.narrowed: list[Place] | None = None
        self.narrowing_error = ""
        if store_allow is not None:
            try:
                self.narrowed = [_allow_place(e) for e in check_setting(REFERENCES_ALLOW, store_allow)]
            except SettingsError as exc:  # a hand-written bad value: as strict as the setting can be
                self.narrowed, self.narrowing_error = [], f" (the setting is malformed: {exc})"
        self.store_scheme = store_scheme
        self.store_options = dict(store_options)
        self.store_endpoint = endpoint_of(store_options)
        self._sources: dict[str, Source] = {}

    def plan(self, entry: Entry, label: str, *, trusted: bool = False) -> Plan:
        """Decide how to read a reference entry, or refuse it before anything is read.

        :param label: the version (``name:vN``), for messages.
        :param trusted: the writer reading what it is logging (``checksum=True``): the allow
            rules are skipped, the options are worked out the same way.
        :raises ReferenceRefusedError: naming the setting that would allow it.
        """
        ref = entry.ref
        assert ref is not None
        where = f"{label}/{entry.path}"
        try:
            place = parse_place(ref.uri)
        except ValueError as exc:
            raise ReferenceRefusedError(f"{where} is a reference to {ref.uri[:300]!r}, which plait does not follow: {exc}",
                                        uri=ref.uri) from None
        if place.local:
            place = Place("file", "", os.path.realpath(place.path))
        if not trusted:
            self._check_place(place, ref.uri, where)
        options = self._options(ref.options or {}, place, ref.uri, where, trusted)
        key = identity_key(ref, entry.size, endpoint_of(options) or "")
        if ref.checksum:  # a copy checked against one checksum is never served for another
            key += "-" + ref.checksum
        return Plan("file://" + place.path if place.local else ref.uri, place.scheme, options, key)

    def source(self, plan: Plan) -> Source:
        """Return the source that reads ``plan`` (one per scheme and options)."""
        key = json.dumps([plan.scheme, plan.options], sort_keys=True, default=str)
        found = self._sources.get(key)
        if found is None:
            found = self._sources[key] = open_source(plan.scheme, plan.options, follow_redirect=self.follow_redirect)
        return found

    def follow_redirect(self, url: str) -> None:
        """Refuse an HTTP redirect to a URL this machine does not allow.

        :raises ReferenceRefusedError: for any other target.
        """
        try:
            place = parse_place(url)
        except ValueError:
            place = None
        if place is None or place.scheme not in ("http", "https") or not self._allowed(place):
            raise ReferenceRefusedError(f"a referenced server redirected to {url[:300]}, which this machine does not "
                                        f"allow; {self._how_to_allow(url)}", uri=url)
        self._check_narrowed(place, url, "the redirect")

    # -- rules ----------------------------------------------------------------------------------

    def _check_place(self, place: Place, uri: str, where: str) -> None:
        if place.local:
            if not self._allowed(place):
                folder = os.path.dirname(place.path)
                raise ReferenceRefusedError(
                    f"{where} is a reference to the local file {place.path}; this machine reads local files for "
                    f"references only below folders it allows: {self._how_to_allow(folder)}", uri=uri)
        elif place.scheme not in CLOUD_SCHEMES and not self._allowed(place):
            what = "http(s) references" if place.scheme in ("http", "https") else f"{place.scheme}:// references"
            raise ReferenceRefusedError(
                f"{where} is a reference to {uri[:300]}; this machine follows {what} only below URL prefixes it "
                f"allows: {self._how_to_allow(f'{place.scheme}://{place.host}/')}", uri=uri)
        self._check_narrowed(place, uri, where)

    def _check_narrowed(self, place: Place, uri: str, where: str) -> None:
        if self.narrowed is not None and not any(is_under(p, place) for p in self.narrowed):
            raise ReferenceRefusedError(
                f"{where}: the store's setting {REFERENCES_ALLOW} does not include {uri[:300]}{self.narrowing_error}; "
                f"see `plait config {REFERENCES_ALLOW}`", uri=uri)

    def _allowed(self, place: Place) -> bool:
        return any(is_under(p, place) for p in self.allowed)

    def _how_to_allow(self, what: str) -> str:
        return (f'add "{what}" to [references] allow in {self.user.path or user_config_path()}, or pass '
                f"--allow-reference {what} (Python: Store(..., allow_references=[...]))")

    def _options(self, recorded: Mapping[str, Any], place: Place, uri: str, where: str, trusted: bool) -> dict[str, Any]:
        """The options to read with: the store's (same service only), the recorded ones, the user's."""
        bad = sorted(k for k in recorded if k not in RECORDED_OPTIONS)
        if bad:
            raise ReferenceRefusedError(
                f"{where} records the storage option {bad[0]!r}, which plait never takes from a store; give the options "
                f'for {uri[:300]} in your settings ([storage."PREFIX"]) or with --reference-option', uri=uri)
        if place.local or place.scheme in ("http", "https"):
            return self.user.storage_options(uri)
        theirs = expand_options(recorded)
        mine = self.user.storage_options(uri)
        base = self.store_options if place.scheme == self.store_scheme and endpoint_of(theirs) == self.store_endpoint else {}
        options = deep_merge(deep_merge(base, theirs), mine)
        endpoint = endpoint_of(options)
        if not trusted and endpoint and not endpoint_of(mine) and endpoint != self.store_endpoint:
            try:
                reachable = self._allowed(parse_place(endpoint)) and parse_place(endpoint).scheme in ("http", "https")
            except ValueError:
                reachable = False
            if not reachable:
                raise ReferenceRefusedError(
                    f"{where} was added with the endpoint {endpoint[:300]}, which this machine reaches only when "
                    f"allowed: {self._how_to_allow(endpoint)}; or give your own endpoint for {place.scheme}://"
                    f"{place.host}/ ([storage.\"{place.scheme}://{place.host}/\"] or --reference-option "
                    "client_kwargs.endpoint_url=…)", uri=uri)
        return options


def _allow_place(entry: str) -> Place:
    place = parse_place(entry)
    return Place("file", "", os.path.realpath(place.path)) if place.local else place


def policy_for(store: BaseStore) -> ReferencePolicy:
    """Return the reference rules of the reader holding ``store`` (its user settings, its setting
    ``references.allow``, the options it was opened with).

    :raises SettingsError: for a malformed user settings file.
    """
    allow = store.setting(REFERENCES_ALLOW) if store.exists else None
    return ReferencePolicy(store.user_settings, allow, store.backend.protocol, store.storage_options)
