"""Walking the folders a draft holds, one folder at a time, children before their parents.

A folder added to a draft (:meth:`plait.Artifact.add_dir`) is recorded as that folder, not as
its files: it is listed when the draft is logged, by :class:`DraftWalk`, which yields one
:class:`Listing` per folder of the version (post-order) and holds the files of the folders on
the current path only. Folders added under the same prefix are merged (the later one wins for a
name both hold); files added by name (``add_file``, ``add_bytes``, references, stored entries)
win over any folder's file at their path; a path taken out with ``remove`` is skipped.

``os.scandir`` already knows each entry's type: no ``lstat`` per file. Each file is stat'ed once
(its inode, size and mtime sign its folder). Only symlinks are resolved: one leaving its folder
is refused unless allowed, and one to a folder the walk is already inside (a loop) always.

The ``stat`` calls are most of a large walk's cost, and kernel time threads cannot share out:
a thread lists the next folders ahead, and once the walk has met :data:`WORKERS_FROM` files,
worker processes list the rest, one a core (:mod:`plait.formats.scanpool`); either way the
rules above are applied here, to what was listed. ``plait log`` starts the workers of a large
folder before it imports the rest of plait (:func:`start_listing`).
"""

from __future__ import annotations

import atexit
import os
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from errno import EACCES, EPERM
from typing import NoReturn

from plait.base.paths import user_cache_dir
from plait.errors import InvalidPathError, SourceError
from plait.formats.names import check_entry_path
from plait.formats.scanpool import ScanPool, usable_cores
from plait.formats.scanworker import Raw, list_folder, unpack


@dataclass(frozen=True, slots=True)
class DirSource:
    """A local folder whose files go below ``path`` inside the version, listed when logged.

    :ivar path: the folder inside the version (``""`` for its root).
    :ivar local: the absolute local folder.
    :ivar follow_external: also follow symlinks that leave ``local``.
    :ivar removed: paths inside the version taken out of this folder after it was added.
    """

    path: str
    local: str
    follow_external: bool = False
    removed: frozenset[str] = frozenset()

    def covers(self, path: str) -> bool:
        """Tell whether ``path`` (an entry path) lies in this folder's part of the version."""
        return not self.path or path == self.path or path.startswith(self.path + "/")

    def local_of(self, path: str) -> str:
        """Return the local path of entry ``path`` (which this folder covers)."""
        rel = path[len(self.path):].lstrip("/") if self.path else path
        return os.path.join(self.local, rel) if rel else self.local


@dataclass(slots=True)
class Group:
    """The files one local folder contributes to a folder of the version.

    :ivar local: the local folder (``local/name`` is each file's path).
    :ivar names: the files' names.
    :ivar stats: their ``(inode, size, mtime_ns)``, flattened: three numbers a file (a list, or an
        ``array("q")`` from a worker process).
    """

    local: str
    names: list[str]
    stats: list[int] | array[int]

    def key(self, i: int) -> tuple[int, int, int]:
        """Return the stat key of file ``i``."""
        return (self.stats[3 * i], self.stats[3 * i + 1], self.stats[3 * i + 2])

    def keeping(self, keep: list[int]) -> Group:
        """Return this group with only files ``keep`` (their positions, in order)."""
        return Group(self.local, [self.names[i] for i in keep], [v for i in keep for v in self.stats[3 * i:3 * i + 3]])


@dataclass(slots=True)
class Listing:
    """One folder of the version, as walked.

    :ivar path: its path inside the version (``""`` for the root).
    :ivar groups: the files local folders contribute (none twice, none a named source overrides).
    :ivar added: the sources added by name directly in this folder.
    :ivar subfolders: the names of its subfolders, sorted (each was yielded before it).
    """

    path: str
    groups: list[Group]
    added: list
    subfolders: list[str]


#: Subfolders of one folder listed ahead by the walk's thread.
PREFETCH = 2
#: A walk that has met this many files lists the rest in worker processes, one a core (at most
#: MAX_WORKERS): starting them costs ~30 ms of a core each; stat'ing 100,000 files ~0.4 s.
WORKERS_FROM = 20_000
MAX_WORKERS = 4
#: Subfolders of one folder listed ahead by the worker processes.
WORKER_PREFETCH = 16
#: :func:`start_listing` starts worker processes for a folder with at least this many subfolders
#: (within its first two levels), and sends them at most AHEAD_FOLDERS of them, in walk order.
EARLY_FROM_FOLDERS = 32
AHEAD_FOLDERS = 1024

_started: dict[str, ScanPool] = {}  # folder -> the pool start_listing() started for it, until a walk takes it


def start_listing(folder: str) -> None:
    """Start listing a large local folder in worker processes now, for the walk that comes later.

    ``plait log`` calls this first: its workers list the first subfolders while the process
    imports the rest of plait (~0.3 s that would otherwise come before any listing), and the
    first :class:`DraftWalk` of ``folder`` takes them over. Nothing happens for a folder with few
    subfolders (a walk that small lists itself), on one core, or where workers cannot start. A
    pool no walk takes is stopped when the process exits. Until the walk asks for them, the
    listings wait in the workers' pipes (:data:`~plait.formats.scanpool.REPLY_PIPE_BYTES` each).

    :param folder: an absolute path, as :meth:`plait.Artifact.add_dir` records it.
    """
    cores = usable_cores()
    if folder in _started or cores < 2:
        return
    order = _first_folders(folder, AHEAD_FOLDERS)
    if len(order) < EARLY_FROM_FOLDERS:
        return
    pool = ScanPool.start(min(cores, MAX_WORKERS))
    if pool is None:
        return
    pool.ahead(order)
    _started[folder] = pool


def _first_folders(folder: str, most: int) -> list[str]:
    """Return up to ``most`` of the first folders a walk of ``folder`` meets (sorted, each one's
    subfolders right after it): those of the top level, and of the second when the top has few
    (``train/``, ``val/``, ``test/``); symlinks are left to the walk."""

    def subfolders(path: str) -> list[str]:
        try:
            with os.scandir(path) as it:
                return sorted(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            return []

    top = subfolders(folder)
    if len(top) >= EARLY_FROM_FOLDERS:  # listing the next level here would be the workers' job done twice
        return top[:most]
    out: list[str] = []
    for child in top:
        out += [child, *subfolders(child)]
        if len(out) >= most:
            break
    return out[:most]


@atexit.register
def _stop_unused() -> None:
    while _started:
        _started.popitem()[1].close()


@dataclass(frozen=True, slots=True)
class _Place:
    """One local folder being walked: its path, its resolved path, the folders holding it."""

    order: int
    source: DirSource
    local: str
    real: str
    holding: frozenset[str]


class DraftWalk:
    """Walk a draft's folders and named sources as one tree (see the module docstring).

    :param dirs: the folders added, oldest first.
    :param added: the sources added by name, by path.
    :param excluded: local folders never to enter (a store's own records).
    :param prefetch: list folders ahead: in a second thread (two threads walk ~1.2× faster than
        one), and in worker processes once the walk proves large (see :data:`WORKERS_FROM`).
    """

    def __init__(self, dirs: list[DirSource], added: dict[str, object], excluded: Iterable[str] = (),
                 prefetch: bool = True) -> None:
        self.dirs = dirs
        self.prefetch = prefetch
        #: a :func:`time.time_ns` reading from before any of the walk's listings was taken
        self.since_ns = time.time_ns()
        self.files_seen = 0  # files listed so far: a walk past WORKERS_FROM lists the rest in workers
        self.cache = os.path.realpath(user_cache_dir())
        excluded = [os.path.normpath(f) for f in excluded]
        self.excluded = frozenset(excluded + [os.path.realpath(f) for f in excluded])
        self.by_parent: dict[str, list] = {}
        self.virtual: dict[str, set[str]] = {}
        for path, src in added.items():
            parent, _, _ = path.rpartition("/")
            self.by_parent.setdefault(parent, []).append(src)
            self._imply(parent)
        self.roots: dict[str, list[_Place]] = {}
        for order, d in enumerate(dirs):
            if any(d.local == x or d.local.startswith(x + os.sep) for x in self.excluded):
                continue
            real = os.path.realpath(d.local)
            self.roots.setdefault(d.path, []).append(_Place(order, d, d.local, real, frozenset([real])))
            self._imply(d.path)

    def _imply(self, folder: str) -> None:
        """Record that ``folder`` and every folder above it exist in the version."""
        while folder:
            parent, _, name = folder.rpartition("/")
            names = self.virtual.setdefault(parent, set())
            if name in names:
                return
            names.add(name)
            folder = parent

    def __iter__(self) -> Iterator[Listing]:
        self.files_seen = 0
        lister = _Lister(self)
        try:
            yield from self._visit("", [], None, lister)
        finally:
            lister.close()

    def _visit(self, path: str, inherited: list[_Place], scanned: Callable[[], _Scanned] | None,
               lister: _Lister) -> Iterator[Listing]:
        groups, below = scanned() if scanned is not None else self._scan_all(path, inherited)
        added = self.by_parent.get(path, [])
        groups = _merged(groups, added)
        base = path + "/" if path else ""
        for name in self.virtual.get(path, ()):
            below.setdefault(name, [])
        for group in groups if below else ():
            clash = below.keys() & set(group.names)
            if clash:
                _clash(base + min(clash))
        for src in added:
            name = src.path.rpartition("/")[2]
            if name in below:
                _clash(src.path)
        subfolders = sorted(below)
        # the next subfolders are listed (by a thread, or by worker processes) while this one
        # hands out the current one: a window a level, so at most window × depth wait
        ahead: deque[tuple[str, Callable[[], _Scanned] | None]] = deque()
        names = iter(subfolders)
        while True:
            while len(ahead) < lister.window and (name := next(names, None)) is not None:
                ahead.append((name, lister.submit(base + name, below[name])))
            if not ahead:
                break
            name, later = ahead.popleft()
            yield from self._visit(base + name, below[name], later, lister)
        yield Listing(path, groups, added, subfolders)

    def _places(self, path: str, inherited: list[_Place]) -> list[_Place]:
        """Return the local folders that make up folder ``path`` of the version, oldest source first."""
        return sorted(inherited + self.roots.get(path, []), key=lambda p: p.order)

    def _scan_all(self, path: str, inherited: list[_Place]) -> _Scanned:
        """List every local folder that makes up folder ``path`` of the version."""
        below: dict[str, list[_Place]] = {}
        groups = [g for place in self._places(path, inherited) if (g := self._scan(path, place, below)) is not None]
        return groups, below

    def _gather(self, path: str, places: list[_Place], replies: list[object]) -> _Scanned:
        """Like :meth:`_scan_all`, from the workers' replies for ``places`` (a folder a lost worker
        had is listed here)."""
        below: dict[str, list[_Place]] = {}
        groups = []
        for place, reply in zip(places, replies):
            if reply is None:
                group = self._scan(path, place, below)
            elif len(reply) == 2:  # type: ignore[arg-type]
                _unreadable(place.local, *reply)  # type: ignore[misc]
            else:
                group = self._sort_out(path, place, unpack(reply), below)  # type: ignore[arg-type]
            if group is not None:
                groups.append(group)
        return groups, below

    def _scan(self, path: str, place: _Place, below: dict[str, list[_Place]]) -> Group | None:
        """List one local folder: its files (stat'ed) into a group, its subfolders into ``below``."""
        try:
            raw = list_folder(place.local)
        except OSError as exc:
            _unreadable(place.local, exc.errno, exc.strerror or str(exc))
        return self._sort_out(path, place, raw, below)

    def _sort_out(self, path: str, place: _Place, raw: Raw, below: dict[str, list[_Place]]) -> Group | None:
        """Turn one local folder's listing into a group of files and places below, by the walk's rules."""
        folder = place.local
        names, stats, dirs, others = raw
        self.files_seen += len(names)
        if path != place.source.path and (_holds_store(folder, names, dirs, others) or place.real == self.cache):
            return None  # a plait store inside the folder (its cache too), or plait's own cache, is never data to log
        removed = place.source.removed
        base = path + "/" if path else ""
        for name in dirs:
            local = os.path.join(folder, name)
            real = os.path.join(place.real, name)
            if (removed and base + name in removed) or (self.excluded and self._excludes(local, real)):
                continue
            below.setdefault(name, []).append(_Place(place.order, place.source, local, real, place.holding | {real}))
        for name in others:
            local = os.path.join(folder, name)
            if not os.path.islink(local):
                continue  # a socket, a pipe, a device: nothing to log
            target = _link_target(local, os.path.realpath(place.source.local), place.source.follow_external)
            if target is None or (removed and base + name in removed):
                continue  # dangling: nothing to log
            if os.path.isdir(target):
                if target in place.holding:
                    raise SourceError(f"{local} is a symlink to {target}, a folder that holds it: a loop; "
                                      "remove the link or log a folder without it", path=local)
                if self.excluded and self._excludes(local, target):
                    continue
                below.setdefault(name, []).append(
                    _Place(place.order, place.source, local, target, place.holding | {target}))
            elif os.path.isfile(target):
                st = os.stat(local)
                names.append(name)
                if not isinstance(stats, list):
                    stats = stats.tolist()  # a worker's array: this inode may not fit one
                stats += (st.st_ino, st.st_size, st.st_mtime_ns)
        group = Group(folder, names, stats)
        if removed:
            keep = [i for i, n in enumerate(names) if base + n not in removed]
            if len(keep) != len(names):
                group = group.keeping(keep)
        _check_names(base, group.names)
        return group

    def _excludes(self, folder: str, real: str) -> bool:
        return folder in self.excluded or real in self.excluded  # both normal already: joined to an absolute folder


_Scanned = tuple[list[Group], dict[str, list[_Place]]]


class _Lister:
    """Lists folders ahead of the walk: in a thread, then, once the walk proves large, in worker
    processes (the stat calls of a big tree on every core; see :mod:`plait.formats.scanworker`)."""

    def __init__(self, walk: DraftWalk) -> None:
        self.walk = walk
        self.threads = ThreadPoolExecutor(1, thread_name_prefix="plait-walk") if walk.prefetch else None
        self.cores = usable_cores()
        self.workers: ScanPool | None = None
        self.tried = not walk.prefetch or self.cores < 2  # whether worker processes were started (or never will be)
        self.window = PREFETCH
        started = _started.pop(walk.dirs[0].local, None) if walk.prefetch and walk.dirs else None
        if started is not None:  # start_listing() began with the first folders: go on with its workers
            self.workers, self.tried, self.window = started, True, WORKER_PREFETCH
            walk.since_ns = min(walk.since_ns, started.started_ns)

    def submit(self, path: str, inherited: list[_Place]) -> Callable[[], _Scanned] | None:
        """Start listing folder ``path`` of the version; return what gives its listing, or ``None``
        to list it when it is reached."""
        if not self.tried and self.walk.files_seen >= WORKERS_FROM:
            self.tried = True
            self.workers = ScanPool.start(min(self.cores, MAX_WORKERS))
            if self.workers is not None:
                self.window = WORKER_PREFETCH
        if self.workers is not None:
            workers = self.workers
            places = self.walk._places(path, inherited)
            numbers = [workers.submit(place.local) for place in places]
            return lambda: self.walk._gather(path, places, [workers.result(n) for n in numbers])
        if self.threads is not None:
            return self.threads.submit(self.walk._scan_all, path, inherited).result
        return None

    def close(self) -> None:
        """Stop the thread and the workers."""
        if self.threads is not None:
            self.threads.shutdown(wait=True, cancel_futures=True)
        if self.workers is not None:
            self.workers.close()


def _merged(groups: list[Group], added: list) -> list[Group]:
    """Drop from each group the names a later group or a named source also holds."""
    if len(groups) < 2 and not added:
        return groups
    taken = {src.path.rpartition("/")[2] for src in added}
    out: list[Group] = []
    for group in reversed(groups):
        if taken & set(group.names):
            group = group.keeping([i for i, n in enumerate(group.names) if n not in taken])
        taken |= set(group.names)
        out.append(group)
    return out[::-1]


def _check_names(base: str, names: list[str]) -> None:
    """Refuse a folder's file names that are not UTF-8, too long or hold a backslash (one check a folder)."""
    try:
        joined = "\0".join(names).encode("utf-8")
    except UnicodeEncodeError:
        joined = b"\\"
    if b"\\" in joined or max(map(len, names), default=0) > 63:
        for name in names:
            if "\\" in name:
                raise InvalidPathError(f"file name {base + name!r} holds a backslash; rename the file", path=base + name)
            check_entry_path(base + name)


def _clash(path: str) -> None:
    raise InvalidPathError(f"entry {path!r} is both a file and a folder", path=path)


def _holds_store(folder: str, files: list[str], dirs: list[str], others: list[str]) -> bool:
    """Tell whether a folder listed is a plait store (``plait.json`` beside ``versions/`` or ``blobs/``)."""
    if "plait.json" not in files and "plait.json" not in others:
        return False
    return any(n in dirs or (n in others and os.path.isdir(os.path.join(folder, n))) for n in ("versions", "blobs"))


def _unreadable(folder: str, errno: int | None, message: str) -> NoReturn:
    """Refuse a folder that cannot be listed (or a file in it stat'ed)."""
    if errno in (EACCES, EPERM):
        message = "permission denied"
    raise SourceError(f"cannot read folder {folder}: {message}", path=folder)


def _link_target(link: str, real_root: str, follow_external: bool) -> str | None:
    """Return where a symlink leads (``None`` if nowhere), refusing loops and, unless allowed, the outside."""
    try:
        target = os.path.realpath(link, strict=True)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: links pointing at each other
        raise SourceError(f"{link} is a symlink that cannot be resolved ({exc.strerror or exc}); remove it", path=link) from None
    if not follow_external and os.path.commonpath([target, real_root]) != real_root:
        raise SourceError(
            f"{link} is a symlink to {target}, outside {real_root}; "
            "pass follow_external_symlinks=True to log it anyway",
            path=link,
        )
    return target
