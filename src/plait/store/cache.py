"""The local cache of downloads: what it holds, cleaning it, and the size bound this user sets.

Downloads never go inside a store: each store gets a folder in the user's cache
(:attr:`~plait.store.base.BaseStore.files_cache_dir`, ``<cache>/stores/<key>/``) holding

    blobs/     blobs read from a remote store, verified
    files/     files assembled from their chunks (``v.open()`` of a large file)
    refs/      copies of referenced files
    versions/  versions downloaded without a destination (``v.download()``)

All of it can be deleted at any time: the next read fetches again. The indexes and the stat
cache beside them are not cleaned here. The bound is a user setting (never a store's)::

    [cache]
    max_size = "20GB"      # after each download, the least recently used files go first

A file is "used" when plait writes or reads it from the cache (its mtime is touched on use).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plait.base.paths import user_cache_dir
from plait.base.sizes import parse_size
from plait.base.usersettings import load_user_settings
from plait.errors import SettingsError

#: The folders of a store's cache folder that hold downloads (and may be cleaned).
AREAS = ("blobs", "files", "refs", "versions")
#: A store's cache folder says which store it belongs to in this file.
ORIGIN = "origin.json"
#: The user setting that bounds the cache.
MAX_SIZE_KEY = "cache.max_size"


@dataclass
class StoreCache:
    """What one store's cache folder holds.

    :ivar folder: the folder.
    :ivar url: the store it belongs to, if it said ("" if not known).
    :ivar size: bytes of downloads in it.
    :ivar files: how many files.
    """

    folder: str
    url: str = ""
    size: int = 0
    files: int = 0


@dataclass
class CacheInfo:
    """The whole cache: where it is, its bound, and each store's part.

    :ivar root: the user's cache folder.
    :ivar max_size: the bound in bytes (``None``: unbounded).
    :ivar stores: each store's cache folder that holds downloads.
    """

    root: str
    max_size: int | None
    stores: list[StoreCache] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Bytes of downloads in the whole cache."""
        return sum(s.size for s in self.stores)

    @property
    def files(self) -> int:
        """Files of downloads in the whole cache."""
        return sum(s.files for s in self.stores)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {"root": self.root, "max_size": self.max_size, "size": self.size, "files": self.files,
                "stores": [s.__dict__ for s in self.stores]}


@dataclass
class CleanReport:
    """What a clean removed (or, in a dry run, would remove).

    :ivar removed: how many files.
    :ivar bytes: how many bytes.
    :ivar left: bytes of downloads left in the cache.
    :ivar dry_run: whether nothing was removed.
    """

    removed: int = 0
    bytes: int = 0
    left: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return dict(self.__dict__)


def max_size() -> int | None:
    """Return the cache bound this user set (``[cache] max_size``), or ``None``.

    :raises SettingsError: for a value that is not a size.
    """
    settings = load_user_settings()
    value = settings.get(MAX_SIZE_KEY)
    if value is None:
        return None
    try:
        return parse_size(value, what=f"{MAX_SIZE_KEY} in {settings.path}")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def remember_origin(folder: str, url: str) -> None:
    """Write which store a cache folder belongs to, once (so ``plait cache info`` can say)."""
    path = os.path.join(folder, ORIGIN)
    if os.path.exists(path):
        return
    with contextlib.suppress(OSError):  # a cache that cannot say whose it is still works
        os.makedirs(folder, exist_ok=True)
        with open(path, "w") as f:
            json.dump({"url": url}, f)


def info(root: str | None = None) -> CacheInfo:
    """Return what the cache holds, by store.

    :param root: the cache folder (default: the user's).
    """
    root = str(root or user_cache_dir())
    out = CacheInfo(root, max_size())
    for folder in _store_folders(root):
        entry = StoreCache(folder, _origin(folder))
        for _, size, _ in _files(folder):
            entry.size += size
            entry.files += 1
        if entry.files:
            out.stores.append(entry)
    return out


def clean(*, max_size: int | None = None, older_than: float | None = None, keep: Iterable[str] = (),
          dry_run: bool = False, root: str | None = None) -> CleanReport:
    """Remove downloads from the cache: those unused for ``older_than`` seconds, then the least
    recently used until the cache holds at most ``max_size`` bytes.

    With neither, everything is removed. Only files below each store's download folders are
    touched; symlinks are not followed.

    :param keep: files never to remove (what a download just wrote).
    :param dry_run: only say what would go.
    :param root: the cache folder (default: the user's).
    :returns: what was (or would be) removed, and what is left.
    """
    root = str(root or user_cache_dir())
    kept = {os.path.abspath(p) for p in keep}
    found = sorted((used, path, size) for folder in _store_folders(root) for path, size, used in _files(folder))
    total = sum(size for _, _, size in found)
    report = CleanReport(dry_run=dry_run)
    cutoff = time.time() - older_than if older_than is not None else None
    for used, path, size in found:  # the least recently used first
        if path in kept:
            continue
        stale = cutoff is not None and used < cutoff
        too_big = max_size is not None and total > max_size
        if not (stale or too_big or (max_size is None and older_than is None)):
            continue
        if not dry_run:
            try:
                with contextlib.suppress(FileNotFoundError):  # another process cleaned it
                    os.unlink(path)
            except OSError:
                continue
        report.removed += 1
        report.bytes += size
        total -= size
    if not dry_run:
        for folder in _store_folders(root):
            _prune_empty(folder)
    report.left = total
    return report


def enforce(keep: Iterable[str] = ()) -> CleanReport | None:
    """Keep the cache within this user's bound, if one is set (called after each download).

    :param keep: files the download just wrote (never removed by it).
    :returns: what was removed, or ``None`` when no bound is set.
    """
    bound = max_size()
    if bound is None:
        return None
    return clean(max_size=bound, keep=keep)


def touch(path: str) -> None:
    """Mark a cached file as just used (its mtime), so the bound removes it last."""
    try:
        os.utime(path)
    except OSError:
        pass


def _store_folders(root: str) -> list[str]:
    stores = os.path.join(root, "stores")
    try:
        return sorted(e.path for e in os.scandir(stores) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


def _origin(folder: str) -> str:
    try:
        with open(os.path.join(folder, ORIGIN)) as f:
            url = json.load(f).get("url", "")
        return url if isinstance(url, str) else ""
    except (OSError, ValueError, AttributeError):
        return ""


def _files(folder: str) -> Iterator[tuple[str, int, float]]:
    """Yield ``(path, size, last used)`` of every download file in one store's cache folder."""
    stack = [os.path.join(folder, area) for area in AREAS]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for item in entries:
            if item.is_dir(follow_symlinks=False):
                stack.append(item.path)
            elif item.is_file(follow_symlinks=False) and not (item.name.startswith(".") and item.name.endswith(".tmp")):
                # a temporary file is being written: never removed under its writer
                st = item.stat(follow_symlinks=False)
                yield item.path, st.st_size, max(st.st_mtime, st.st_atime)


def _prune_empty(folder: str) -> None:
    for area in AREAS:
        top = os.path.join(folder, area)
        for current, _, _ in os.walk(top, topdown=False):
            if current != top:
                try:
                    os.rmdir(current)  # only an empty folder goes
                except OSError:
                    pass
