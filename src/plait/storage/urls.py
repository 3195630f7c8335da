"""Opening a store URL: the right backend for a local path or any fsspec URL."""

from __future__ import annotations

import os
from typing import Any

from plait.errors import StoreUnreachableError, UnsupportedStoreError
from plait.storage.backend import Backend
from plait.storage.local import LocalBackend
from plait.storage.remote import FsspecBackend, MemoryBackend, unreachable_error

#: The pip extra that installs each protocol's filesystem.
EXTRAS = {"s3": "s3", "s3a": "s3", "gcs": "gcs", "gs": "gcs", "az": "azure", "abfs": "azure", "adl": "azure"}


def open_backend(url: str, storage_options: dict[str, Any] | None = None) -> Backend:
    """Return the backend for a store URL.

    :param url: a local path or any fsspec URL.
    :param storage_options: passed to the fsspec filesystem (credentials, endpoint, …).
    :raises UnsupportedStoreError: for an unknown protocol, with the ``pip install`` hint.
    """
    if "://" not in url or url.startswith(("file://", "local://")):
        path = url.split("://", 1)[1] if "://" in url else url
        return LocalBackend(url, os.path.expanduser(path))
    import fsspec
    from fsspec.core import url_to_fs

    protocol = url.split("://", 1)[0]
    options = dict(storage_options or {})
    retries = options.pop("retries", None)  # s3fs takes it as an attribute, not an argument
    if protocol != "memory":
        # no listing cache: fsspec shares one filesystem object per process, and a listing it kept
        # would hide what other writers stored since (a new index file, a version): a reader would
        # miss it, a gc delete a pack it did not see listed
        options.setdefault("use_listings_cache", False)
    try:
        try:
            fs, root = url_to_fs(url, **options)
        except TypeError:
            if "use_listings_cache" in (storage_options or {}):
                raise
            options.pop("use_listings_cache")  # a filesystem that takes no listing options
            fs, root = url_to_fs(url, **options)
    except OSError as exc:  # filesystems that connect when made (ftp, sftp, smb) and are refused
        raise unreachable_error(exc, url) or StoreUnreachableError(
            f"cannot open {url}: {exc.strerror or exc}; check the URL, the network and the credentials", url=url) from None
    except (ValueError, ImportError) as exc:
        if protocol not in fsspec.available_protocols() and protocol not in EXTRAS:
            raise UnsupportedStoreError(
                f"unknown store protocol {protocol!r} in {url!r}; use a local path, memory://, s3://, gs:// or az://"
            ) from None
        extra = EXTRAS.get(protocol, protocol)
        raise UnsupportedStoreError(
            f"the {protocol!r} store needs an extra package: pip install 'plait[{extra}]' ({exc})"
        ) from None
    if retries is not None and hasattr(fs, "retries"):
        fs.retries = max(1, int(retries))
    if protocol == "memory":
        return MemoryBackend(url, fs, root)
    return FsspecBackend(url, fs, root)
