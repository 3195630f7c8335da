"""What a reference records: where the data stays, what identified it when it was logged, and the
options it was listed with.

A reference is a manifest entry whose bytes stay at their source (a bucket, a URL, a local
file). It records the strongest identity the source offers — S3 ETag and VersionId, GCS
generation and checksum, HTTP ETag and Last-Modified, a local file's size, mtime and inode — and,
when asked, the digest of the bytes themselves. A read later returns exactly those bytes or
refuses (:mod:`plait.store.references`).

The options a reference was listed with are recorded without secrets, and only those that say
*where* the data is (an endpoint, a region, an account, anonymous access): credentials stay
with each reader, and a reader follows a recorded endpoint only where its own settings allow
(:mod:`plait.store.refpolicy`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plait.storage.sources import ObjectInfo, endpoint_of, normal_etag

#: The storage options a reference records (dotted keys); everything else — keys, secrets,
#: tokens, proxies, headers — is dropped when it is recorded and refused when a store holds it.
RECORDED_OPTIONS = frozenset({"anon", "endpoint_url", "client_kwargs.endpoint_url", "client_kwargs.region_name", "account_name"})
#: Recorded option values are short scalars.
MAX_OPTION_TEXT = 1024


class Reference(BaseModel):
    """Where data that stays outside the store lives, and what identified it when it was logged.

    :ivar uri: ``s3://bucket/key``, ``gs://…``, ``https://…`` or ``file:///path``.
    :ivar etag: the object's ETag or checksum (without quotes), when the source gives one.
    :ivar version_id: the object version (S3 VersionId, GCS generation), on versioned sources.
    :ivar mtime: modification time as the source reported it (ns since the epoch for local files).
    :ivar inode: the inode of a local file.
    :ivar checksum: the digest of the bytes (the manifest's algorithm), when logged with ``checksum=True``.
    :ivar options: the storage options it was listed with that say where it is (dotted keys), no secrets.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    uri: str = Field(min_length=1, max_length=4096)
    etag: str | None = Field(default=None, max_length=512)
    version_id: str | None = Field(default=None, max_length=1024)
    mtime: str | None = Field(default=None, max_length=64)
    inode: int | None = Field(default=None, ge=0, lt=1 << 64)
    checksum: str | None = Field(default=None, min_length=32, max_length=64, pattern=r"^[0-9a-f]+$")
    options: dict[str, str | bool | int | float | None] | None = Field(default=None, max_length=32)

    @property
    def endpoint(self) -> str | None:
        """The endpoint URL recorded with the reference, if any."""
        return endpoint_of(expand_options(self.options or {}))


def recorded_options(options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return the part of fsspec ``options`` a reference records: where the data is, never a secret.

    :returns: dotted keys of :data:`RECORDED_OPTIONS` with scalar values, or ``None`` if none.
    """
    flat = flatten_options(options or {})
    kept = {k: v for k, v in flat.items() if k in RECORDED_OPTIONS and _scalar(v)}
    return kept or None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= MAX_OPTION_TEXT)


def flatten_options(options: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return nested options as dotted keys (``{"client_kwargs": {"a": 1}}`` → ``{"client_kwargs.a": 1}``)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping):
            out.update(flatten_options(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def expand_options(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Return dotted-key options nested again (the reverse of :func:`flatten_options`)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def reference_of(info: ObjectInfo, options: Mapping[str, Any] | None = None) -> Reference:
    """Return what a reference records about the object ``info`` describes, listed with ``options``."""
    return Reference(uri=info.uri, etag=info.etag, version_id=info.version_id, mtime=info.mtime, inode=info.inode,
                     options=recorded_options(options))


def identity_key(ref: Reference, size: int, endpoint: str | None = None) -> str:
    """Return a digest of everything that identifies a referenced object: where and what it is.

    It is the entry digest of a reference (so a version changes exactly when some object's
    identity does, and a re-log finds the checksum it already took) and names the local copy of
    its bytes (so a copy of other bytes is never served for it). A reader passes the endpoint it
    will really read from.

    :param endpoint: the endpoint URL (default: the recorded one).
    """
    fields = [ref.uri, endpoint if endpoint is not None else ref.endpoint, size, normal_etag(ref.etag), ref.version_id,
              ref.mtime, ref.inode]
    # blake2b-128: the same width as the store's digests, whatever its algorithm
    return hashlib.blake2b(json.dumps(fields).encode(), digest_size=16).hexdigest()


def changes(ref: Reference, size: int, now: ObjectInfo) -> list[str]:
    """Return what differs between a recorded reference and what its source says now (``[]``: the same).

    Every field the reference recorded is compared, except that the modification time is left
    out where an ETag or version identifies the object (listings and lookups report it with
    different precision).
    """
    found = []
    if now.size != size:
        found.append(f"size {size} -> {now.size}")
    if ref.etag is not None and normal_etag(ref.etag) != now.etag:
        found.append(f"etag {normal_etag(ref.etag)!r} -> {now.etag!r}")
    if ref.version_id is not None and now.version_id is not None and ref.version_id != now.version_id:
        found.append(f"version {ref.version_id!r} -> {now.version_id!r}")
    if ref.inode is not None and ref.inode != now.inode:
        found.append(f"inode {ref.inode} -> {now.inode} (the file was replaced)")
    if ref.mtime is not None and (ref.etag is None and ref.version_id is None) and not _same_time(ref.mtime, now.mtime):
        found.append(f"modified {ref.mtime} -> {now.mtime}")
    return found


def _same_time(recorded: str, now: str | None) -> bool:
    if recorded == now:
        return True
    try:  # a local reference logged before plait recorded nanoseconds holds float seconds
        return "." in recorded and now is not None and abs(float(recorded) - int(now) / 1e9) < 1e-6
    except ValueError:
        return False


def differences(old: Reference, old_size: int, new: Reference, new_size: int) -> list[str]:
    """Return how two recorded references differ (for ``plait diff``), e.g. ``["etag 'a1' -> 'b2'"]``."""
    found = [] if old.uri == new.uri else [f"uri {old.uri} -> {new.uri}"]
    if old_size != new_size:
        found.append(f"size {old_size} -> {new_size}")
    for field, label in (("etag", "etag"), ("version_id", "version"), ("mtime", "modified"), ("inode", "inode"),
                         ("checksum", "checksum")):
        a, b = getattr(old, field), getattr(new, field)
        if a != b:
            found.append(f"{label} {a!r} -> {b!r}")
    if old.endpoint != new.endpoint:
        found.append(f"endpoint {old.endpoint!r} -> {new.endpoint!r}")
    return found
