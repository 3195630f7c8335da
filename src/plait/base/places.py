"""URLs and local paths as plait compares them: one normal form, and "is this under that prefix".

References, the user's allow-list and per-prefix storage options all name places as URLs or
local paths. They are compared in one normal form — ``(scheme, host, path)`` — so that
``/data/x``, ``file:///data/x`` and ``file://localhost/data/x`` are one place, and a prefix
``https://example.org/data`` matches ``https://example.org/data/a.csv`` but neither
``https://example.org/database`` nor ``https://example.org.evil.net/data``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
#: Schemes whose host part is case-insensitive (DNS names).
_CASELESS_HOSTS = {"http", "https"}


@dataclass(frozen=True)
class Place:
    """A URL or local path in normal form.

    :ivar scheme: lowercase scheme; ``file`` for a local path.
    :ivar host: the bucket, account or ``host:port``; empty for a local path.
    :ivar path: ``/``-separated path (absolute for a local path, without a leading ``/`` for
        buckets), without a trailing ``/``.
    """

    scheme: str
    host: str
    path: str

    @property
    def local(self) -> bool:
        """Whether this is a local path."""
        return self.scheme == "file"

    def __str__(self) -> str:
        return self.path if self.local else f"{self.scheme}://{self.host}/{self.path.lstrip('/')}".rstrip("/")


def parse_place(text: str) -> Place:
    """Return the normal form of a URL or a local path.

    A local path is made absolute (``~`` expanded); symlinks are not resolved here.

    :raises ValueError: for an empty text, a chained URL (``a::b``), a malformed scheme, a
        ``file://`` URL naming another host, or a path with ``.``/``..`` segments.
    """
    if not text or not text.strip() or "\x00" in text:
        raise ValueError("it is empty")
    if "::" in text:
        raise ValueError("chained URLs (a::b) are not followed")
    if "://" not in text:
        return Place("file", "", os.path.abspath(os.path.expanduser(text)))
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if not _SCHEME.match(scheme):
        raise ValueError(f"{scheme!r} is not a URL scheme")
    if scheme in ("file", "local"):
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise ValueError(f"a file URL names this machine only, not host {host!r}")
        return Place("file", "", os.path.abspath("/" + path if slash else "/"))
    if scheme in _CASELESS_HOSTS:
        parts = urlsplit(text)
        host = (parts.netloc.rpartition("@")[2]).lower()
        path = parts.path
    else:
        host, _, path = rest.partition("/")
    _check_segments(unquote(path))
    return Place(scheme, host, path.rstrip("/") if scheme in _CASELESS_HOSTS else path.strip("/"))


def _check_segments(path: str) -> None:
    # a server or object store may resolve "a/../b" to "b": a prefix check on the text would be fooled
    if any(part in (".", "..") for part in path.split("/")):
        raise ValueError("it has '.' or '..' segments")


def is_under(prefix: Place, place: Place) -> bool:
    """Tell whether ``place`` is ``prefix`` or below it.

    A prefix without a host (``https://``) matches every host of its scheme; a prefix path
    matches whole segments only.
    """
    if prefix.scheme != place.scheme or (prefix.host and prefix.host != place.host):
        return False
    if not prefix.host and prefix.path.strip("/") == "":
        return True
    base = prefix.path.rstrip("/")
    if prefix.local:
        return place.path == base or place.path.startswith(base + "/") or base == ""
    return place.path == base or place.path.startswith(base + "/") or base in ("", "/")

