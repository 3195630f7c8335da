"""HTTP(S) as a source of references: one URL is one object, identified by its headers.

A HEAD gives the identity (``ETag``, ``Last-Modified``, ``Content-Length``); a read is one GET
sent with ``If-Match`` the recorded ETag, whose answer's headers are checked before a byte is
kept. HTTP has no listing, so a reference is a single URL. A redirect is followed only when the
caller's ``follow_redirect`` accepts its target: a server must not be able to send a reader to
a place the reader does not allow. The standard library's ``urllib`` does the requests.
"""

from __future__ import annotations

import email.utils
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from plait.errors import InvalidInputError, SourceError
from plait.storage.sources import COPY_BUFFER, Check, ObjectInfo, Source, normal_etag

#: Seconds to wait for a server before giving up.
TIMEOUT = 60.0


def _refuse_redirects(url: str) -> None:
    raise SourceError(f"the server redirected to {url}; reference that URL instead", path=url)


class HttpSource(Source):
    """Objects behind ``http://`` and ``https://`` URLs.

    :param options: ``headers`` (a dict sent with every request) and ``timeout`` (seconds) are used.
    :param follow_redirect: called with each redirect's target; raises to refuse it.
    """

    def __init__(self, options: Mapping[str, Any], follow_redirect: Callable[[str], None] | None = None) -> None:
        self.headers = {str(k): str(v) for k, v in dict(options.get("headers") or {}).items()}
        self.timeout = float(options.get("timeout", TIMEOUT))
        follow = follow_redirect or _refuse_redirects

        class Redirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
                follow(newurl)
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        self.opener = urllib.request.build_opener(Redirects())

    def _open(self, uri: str, method: str, headers: Mapping[str, str] | None = None) -> Any:
        request = urllib.request.Request(uri, method=method, headers={**self.headers, **(headers or {})})
        try:
            return self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (404, 410):
                raise FileNotFoundError(uri) from None
            if exc.code == 412:
                raise _Changed from None
            if exc.code in (401, 403):
                raise PermissionError(f"HTTP {exc.code} {exc.reason}") from None
            raise SourceError(f"cannot read {uri}: HTTP {exc.code} {exc.reason}", path=uri) from None

    def _info(self, uri: str, headers: Any) -> ObjectInfo:
        length = headers.get("Content-Length")
        if length is None or not str(length).isdigit():
            raise SourceError(f"{uri} does not say how long it is (no Content-Length); plait cannot record it", path=uri)
        modified = headers.get("Last-Modified")
        if modified:
            parsed = email.utils.parsedate_to_datetime(modified)
            modified = parsed.isoformat() if parsed is not None else modified
        return ObjectInfo(uri, int(length), normal_etag(headers.get("ETag")), mtime=modified or None)

    def _list(self, uri: str, max_objects: int) -> list[ObjectInfo]:
        if uri.endswith("/"):
            raise InvalidInputError(f"{uri} is a folder URL; HTTP has no listing, so reference each file's URL")
        one = self._head(uri, None)
        if one is None:
            raise FileNotFoundError(uri)
        return [one]

    def _head(self, uri: str, version_id: str | None) -> ObjectInfo | None:
        with self._open(uri, "HEAD") as answer:
            return self._info(uri, answer.headers)

    def _read(self, uri: str, out: BinaryIO, check: Check, version_id: str | None, etag: str | None) -> ObjectInfo:
        try:
            answer = self._open(uri, "GET", {"If-Match": f'"{etag}"'} if etag else None)
        except _Changed:
            now = self._head(uri, None)
            if now is not None:
                check(now)
            raise SourceError(f"{uri} no longer has ETag {etag!r}", path=uri) from None
        with answer:
            info = self._info(uri, answer.headers)
            check(info)
            shutil.copyfileobj(answer, out, COPY_BUFFER)
        return info


class _Changed(Exception):
    """The server refused a conditional GET: the object is not what was recorded."""
