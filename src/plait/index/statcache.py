"""The stat cache: remember each file's digest by ``(path, inode, size, mtime_ns)``.

Re-logging a folder whose files have not changed then reads no file content at all. The cache
also remembers whole trees: the signature of every file's path and stat in one draft maps to
the manifest digest they made, so re-logging 20,000 unchanged files looks up one row instead of
20,000 and builds no manifest. For a tree (format-2 store) it remembers every folder the same
way: the signature of the folder's files and subfolders maps to its node digest, so a re-log
reuses each unchanged folder without opening its files or reading its node. The cache is a small SQLite file per user and hash algorithm;
deleting it only costs re-hashing. :class:`NoStatCache` is the null object used when caching is
off.

A stat is trusted only once the file has settled. A filesystem stamps a write with the time of its
clock's current tick: 1–10 ms on Linux before 6.13, a second on ext3 or HFS+, two on FAT. A file
written again within the tick plait stat'ed it in keeps its size and mtime, and a cache that
remembered it would give the old digest for the new bytes forever after. So a file whose mtime is
less than :data:`SETTLE_NS` before plait began to stat it is hashed but not remembered, and no
folder or tree holding it is (Git's "racy clean" entries, Mercurial's "unsure" ones). The next
log, once the file has settled, reads it once more and remembers it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable

from plait.index.sqlite import connect_wal
from plait.storage.digest import FileDigest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    chunks TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trees (
    signature TEXT PRIMARY KEY,
    manifest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS folders (
    signature TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    size INTEGER NOT NULL,
    files INTEGER NOT NULL
) WITHOUT ROWID;
"""

StatKey = tuple[int, int, int]
#: What a folder's signature maps to: ``(node digest, bytes below, files below)``.
FolderNode = tuple[str, int, int]

#: How long a file must have been left alone, before plait began to stat it, for the cache to trust
#: its stat (see the module docstring): above the coarsest filesystem clock tick (FAT's 2 s).
SETTLE_NS = 2_000_000_000


def settled_before(started_ns: int) -> int:
    """Return the newest mtime (ns) the cache may trust in stats taken after ``started_ns``
    (a :func:`time.time_ns` reading); a stat with a newer one is of a file that has not settled."""
    return started_ns - SETTLE_NS


def now_settled() -> int:
    """Return :func:`settled_before` for stats about to be taken now."""
    return settled_before(time.time_ns())


class NoStatCache:
    """A stat cache that remembers nothing."""

    def lookup(self, items: Iterable[tuple[str, StatKey]]) -> dict[str, FileDigest]:
        """Return the cached digests of files whose stat is unchanged (none here)."""
        return {}

    def remember(self, items: Iterable[tuple[str, StatKey, FileDigest]], *, settled: int) -> None:
        """Store digests for later lookups (ignored here)."""

    def tree(self, signature: str) -> str | None:
        """Return the manifest digest a tree with this stat signature made (never, here)."""
        return None

    def remember_tree(self, signature: str, manifest: str) -> None:
        """Remember the manifest digest of a tree's stat signature (ignored here)."""

    def folders(self, signatures: Iterable[str]) -> dict[str, FolderNode]:
        """Return the node each folder signature made (none, here)."""
        return {}

    def remember_folders(self, items: Iterable[tuple[str, FolderNode]]) -> None:
        """Remember the node of each folder signature (ignored here)."""


class StatCache(NoStatCache):
    """A SQLite-backed stat cache, safe to share between threads and processes.

    :param path: the SQLite file (its folder is created).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        os.makedirs(os.path.dirname(os.fspath(path)), exist_ok=True)
        self._path = os.fspath(path)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect_wal(self._path, timeout=30)
            db.executescript(_SCHEMA)
            self._local.db = db
        return db

    def lookup(self, items: Iterable[tuple[str, StatKey]]) -> dict[str, FileDigest]:
        """Return ``{path: FileDigest}`` for every file whose inode, size and mtime still match."""
        wanted = dict(items)
        if not wanted:
            return {}
        db = self._db()
        out: dict[str, FileDigest] = {}
        paths = list(wanted)
        for i in range(0, len(paths), 500):
            batch = paths[i : i + 500]
            rows = db.execute(
                f"SELECT path, inode, size, mtime_ns, digest, chunks FROM files WHERE path IN ({','.join('?' * len(batch))})",
                batch,
            )
            for path, inode, size, mtime_ns, digest, chunks in rows:
                if wanted[path] == (inode, size, mtime_ns):
                    parsed = tuple((d, int(s)) for d, s in json.loads(chunks)) if chunks else None
                    out[path] = FileDigest(digest, size, parsed)
        return out

    def remember(self, items: Iterable[tuple[str, StatKey, FileDigest]], *, settled: int) -> None:
        """Store the digests of freshly hashed files.

        :param settled: the newest mtime to remember (from :func:`settled_before`): files changed
            later are left out.
        """
        rows = [
            (path, key[0], key[1], key[2], fd.digest, json.dumps(fd.chunks) if fd.chunks is not None else None)
            for path, key, fd in items if key[2] <= settled
        ]
        if not rows:
            return
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", rows)

    def tree(self, signature: str) -> str | None:
        """Return the manifest digest a tree with this stat signature made, if known."""
        row = self._db().execute("SELECT manifest FROM trees WHERE signature = ?", (signature,)).fetchone()
        return row[0] if row else None

    def remember_tree(self, signature: str, manifest: str) -> None:
        """Remember that the tree with this stat signature made this manifest digest."""
        self._db().execute("INSERT OR REPLACE INTO trees VALUES (?, ?)", (signature, manifest))

    def folders(self, signatures: Iterable[str]) -> dict[str, FolderNode]:
        """Return ``{signature: (node digest, bytes, files)}`` for the folder signatures known."""
        wanted = list(signatures)
        db = self._db()
        out: dict[str, FolderNode] = {}
        for i in range(0, len(wanted), 500):
            batch = wanted[i : i + 500]
            rows = db.execute(f"SELECT signature, node, size, files FROM folders WHERE signature IN ({','.join('?' * len(batch))})", batch)
            out.update((sig, (node, size, files)) for sig, node, size, files in rows)
        return out

    def remember_folders(self, items: Iterable[tuple[str, FolderNode]]) -> None:
        """Remember the node each folder signature made, in one transaction."""
        rows = [(sig, *node) for sig, node in items]
        if not rows:
            return
        db = self._db()
        with db:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO folders VALUES (?, ?, ?, ?)", rows)
