"""The :class:`~plait.storage.sources.Source` for a URL scheme: local files, S3, HTTP(S), or any
other fsspec filesystem."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from plait.errors import SourceError
from plait.storage.sources import FsspecSource, LocalSource, Source
from plait.storage.urls import EXTRAS


def open_source(scheme: str, options: Mapping[str, Any] | None = None, *,
                follow_redirect: Callable[[str], None] | None = None) -> Source:
    """Return the source for a URL scheme, opened with ``options``.

    :param follow_redirect: for ``http(s)``: called with each redirect target; raises to refuse it
        (the default refuses every redirect).
    :raises SourceError: if the scheme needs a package that is not installed.
    """
    options = dict(options or {})
    if scheme in ("file", "local"):
        return LocalSource()
    if scheme in ("http", "https"):
        from plait.storage.httpsource import HttpSource  # here: urllib and http.client cost reading commands ~30 ms

        return HttpSource(options, follow_redirect)
    try:
        if scheme in ("s3", "s3a"):
            from plait.storage.s3source import S3Source

            return S3Source(scheme, options)
        return FsspecSource(scheme, options)
    except (ImportError, ValueError) as exc:
        extra = EXTRAS.get(scheme)
        hint = f"pip install 'plait[{extra}]'" if extra else "install the fsspec filesystem for it"
        raise SourceError(f"cannot read {scheme}:// references here ({exc}); {hint}", path=scheme) from None
