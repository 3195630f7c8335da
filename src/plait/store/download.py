"""Reading a version's files out of a store: to a folder, or one file into the cache; each verified.

Nothing is written outside the destination folder, and a failed download leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from plait.base.parallel import parallel_map, parallel_map_batched
from plait.base.paths import user_cache_dir
from plait.errors import IntegrityError, InvalidInputError, InvalidPathError
from plait.formats.manifest import Entry
from plait.formats.names import check_entry_path
from plait.index.statcache import now_settled
from plait.storage.backend import temporary_name, unlink_quietly
from plait.storage.digest import digest_file, stat_key
from plait.store import cache
from plait.store.references import ReferenceReader

if TYPE_CHECKING:
    from plait.store.base import BaseStore as Store


def safe_join(dest: str, path: str) -> str:
    """Join an entry path under ``dest``, refusing anything that would land outside it.

    Symlinks already inside ``dest`` are resolved first, so a link planted there cannot
    redirect a write elsewhere.

    :raises InvalidPathError: if the result escapes ``dest``.
    """
    return safe_joins(dest, [path])[0]


def safe_joins(dest: str, paths: Iterable[str]) -> list[str]:
    """:func:`safe_join` for many paths: each folder is resolved once, not once per file.

    The last part of each path is not resolved: files are written to a temporary name and
    renamed over it, which replaces a symlink there instead of following it.
    """
    root = os.path.realpath(dest)
    folders: dict[str, str] = {"": root}
    out = []
    for path in paths:
        rel = check_entry_path(path)
        parent, _, name = rel.rpartition("/")
        folder = folders.get(parent)
        if folder is None:
            folder = folders[parent] = os.path.realpath(os.path.join(root, *parent.split("/")))
            if os.path.commonpath([folder, root]) != root:
                raise InvalidPathError(f"entry {path!r} would be written outside {dest}; refusing", path=path)
        out.append(os.path.join(folder, name))
    return out


#: Files written per batch: paths are checked, blobs prefetched and files written batch by
#: batch, so a download holds a bounded number of entries whatever the version's size.
DOWNLOAD_BATCH = 4096

#: Clashing files named in the message that refuses a download, at most.
CLASHES_SHOWN = 10


def download(store: Store, entries: Iterable[Entry], folder: str, label: str, *, force: bool = False) -> str:
    """Write ``entries`` below ``folder`` and return the folder.

    See :meth:`plait.ArtifactVersion.download`. ``entries`` is read twice (a list, or a version's
    streaming :meth:`~plait.ArtifactVersion.files`): once to check every reference, path and
    file already there before anything is read or written, then batch by batch to write.

    :param label: what the files belong to (``name:vN``), for messages.
    :param force: overwrite files already in ``folder`` that differ (else refuse, naming them).
    :raises InvalidInputError: for a ``folder`` that is a file, or that holds different files at
        the paths of ``entries`` and ``force`` is not set (nothing is written).
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InvalidInputError(f"{folder} is a file; give a folder to write the files of {label} into")
    created = not os.path.isdir(folder)
    refs: list[Entry] = []
    clashes: list[str] = []
    clashing = 0
    total = 0
    for batch in _batches(entries):
        targets = safe_joins(folder, [e.path for e in batch])  # every path is checked before anything is written
        refs += [e for e in batch if e.ref is not None]
        total += sum(e.size for e in batch)
        if not created and not force:
            found = [e.path for e, t in zip(batch, targets) if os.path.lexists(t) and not _already_there(store, e, t)]
            clashing += len(found)
            clashes += found[:CLASHES_SHOWN - len(clashes)]
    if clashing:
        sample = ", ".join(clashes) + (f" and {clashing - len(clashes)} more" if clashing > len(clashes) else "")
        held = f"{clashing} files that differ" if clashing > 1 else "1 file that differs"
        raise InvalidInputError(f"{folder} already holds {held} from "
                                f"{label}: {sample}; pass --force (force=True) to overwrite them, or choose an empty folder")
    reader = ReferenceReader(store) if refs else None
    plans = dict(zip([e.path for e in refs], reader.plans(refs, label))) if reader else {}  # refused before anything is read
    os.makedirs(folder, exist_ok=True)
    in_cache = _inside(folder, str(user_cache_dir()))
    # the paths written are kept only where they are needed (memory stays flat otherwise): to undo
    # a failed download into a folder that was there (one made here is removed whole), and to
    # spare them from the cache's bound
    done: list[str] | None = [] if in_cache or not created else None
    store.progress.start("downloading", total)
    try:
        for batch in _batches(entries):
            _write_batch(store, batch, folder, label, reader, plans, done, fresh=created)
    except BaseException:
        _undo(folder, done or [], created)  # a failed download leaves nothing behind
        raise
    finally:
        store.progress.finish()
    # what was written into the user's cache is spared by its bound; other folders are not the cache's
    _after_download(store, done if in_cache and done is not None else ())
    return folder


def _inside(path: str, root: str) -> bool:
    path, root = os.path.abspath(path), os.path.abspath(root)
    return path == root or path.startswith(root + os.sep)


def _batches(entries: Iterable[Entry]) -> Iterator[list[Entry]]:
    it = iter(entries)
    while batch := list(islice(it, DOWNLOAD_BATCH)):
        yield batch


def _write_batch(store: Store, batch: list[Entry], folder: str, label: str, reader: ReferenceReader | None,
                 plans: dict[str, Any], done: list[str] | None, *, fresh: bool = False) -> None:
    """Write one batch of files.

    :param done: the paths written so far, added to (``None``: not kept).
    :param fresh: ``folder`` was made by this download (nothing is there to compare or replace).
    """
    targets = list(zip(batch, safe_joins(folder, [e.path for e in batch])))
    todo = targets if fresh else [(e, t) for e, t in targets if not _already_there(store, e, t)]
    if done is not None:
        done += [t for _, t in todo]
    if store.backend.is_local and store.blobs.verified_reads:  # packs: whole files from coalesced ranges
        simple = [(e, t) for e, t in todo if e.ref is None and e.chunks is None]
        if simple:
            _write_packed(store, simple, label, fresh)
            todo = [(e, t) for e, t in todo if e.ref is not None or e.chunks is not None]
    try:
        store.blobs.prefetch(d for e, _ in todo for d, _ in e.blobs)
    except IntegrityError as exc:  # name the file, not only the blob
        owner = next((e.path for e, _ in todo if any(d == exc.digest for d, _ in e.blobs)), "")
        raise IntegrityError(f"{label}/{owner}: {exc}", digest=exc.digest, path=owner) from None

    def write(item: tuple[Entry, str]) -> None:
        entry, target = item
        if reader is not None and entry.ref is not None:
            reader.fetch(entry, plans[entry.path], target, label)
        else:
            store.blobs.write_entry(entry.blobs, entry.digest, target, f"{label}/{entry.path}")
        store.progress.advance(entry.size)

    if store.backend.is_local:
        parallel_map_batched(write, todo, lambda item: item[0].size, 2)
    else:
        parallel_map(write, todo, max(2, store.blobs.workers))
    # the copies are not remembered in the stat cache: a file just written has not settled (an edit
    # right after it could keep its mtime; see plait.index.statcache), so the next look reads it once


#: Files read from packs are written on this many threads, this many bytes at a time.
WRITE_THREADS = 2
WRITE_BYTES = 32 << 20

#: Opening a file a download writes: a new file only, never through a symlink.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _write_packed(store: Store, todo: list[tuple[Entry, str]], label: str, fresh: bool) -> None:
    """Write files that are one packed blob each, read pack range by pack range and verified in
    memory.

    In a folder this download made, a file is created at its name directly (exclusively: nothing
    can be there); elsewhere it is written to a temporary name and renamed over what is there
    (which replaces a symlink instead of following it). Each folder is made once.
    """
    wanted: dict[str, list[tuple[Entry, str]]] = {}
    for entry, target in todo:
        wanted.setdefault(entry.digest, []).append((entry, target))
    made: set[str] = set()
    ready: list[tuple[str, Entry, bytes]] = []  # read and verified, to write
    weight = 0

    def write(item: tuple[str, Entry, bytes]) -> None:
        target, entry, data = item
        _write_file(target, data, fresh)
        store.progress.advance(entry.size)

    def flush() -> None:  # creating a file is kernel time, which two threads share out (the GIL is let go)
        nonlocal weight
        parallel_map_batched(write, ready, lambda item: len(item[2]), WRITE_THREADS)
        ready.clear()
        weight = 0

    blobs = store.blobs.read_many(wanted)
    while True:
        try:
            found = next(blobs, None)
        except IntegrityError as exc:  # name the file, not only the blob
            owner = wanted.get(exc.digest or "", [(None, "")])[0][0]
            path = owner.path if owner is not None else ""
            raise IntegrityError(f"{label}/{path}: {exc}", digest=exc.digest, path=path) from None
        if found is None:
            break
        digest, data = found
        for entry, target in wanted[digest]:
            if len(data) != entry.size:
                fewer = "fewer" if len(data) < entry.size else "more"
                raise IntegrityError(f"{label}/{entry.path}: blob {digest} holds {fewer} bytes than the manifest says "
                                     f"({entry.size}); the store is damaged here (run `plait verify`)",
                                     digest=digest, path=entry.path)
            parent = os.path.dirname(target)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            ready.append((target, entry, data))
            weight += len(data)
        if weight >= WRITE_BYTES:
            flush()
    flush()


def _write_file(target: str, data: bytes, fresh: bool) -> None:
    """Write ``data`` to a new file ``target`` (see :func:`_write_packed`)."""
    path = target if fresh else temporary_name(target)
    fd = os.open(path, _CREATE, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        if not fresh:
            os.replace(path, target)
    except BaseException:
        unlink_quietly(path)
        raise


def _after_download(store: Store, keep: Iterable[str]) -> None:
    """Keep the user's cache within its bound, sparing what was just written."""
    if store.backend.protocol != "memory":
        cache.remember_origin(store.files_cache_dir, store.url)
        cache.enforce(keep)


def _undo(folder: str, targets: list[str], created: bool) -> None:
    """Remove what a failed download wrote: its files (and their folders, if it made ``folder``)."""
    if created:  # everything inside is ours; the empty folder stays, as before
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)
        return
    for target in targets:
        unlink_quietly(target)


def _already_there(store: Store, entry: Entry, target: str) -> bool:
    settled = now_settled()
    try:
        st = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size or entry.ref is not None:
        return False  # a symlink is replaced by the file, never followed
    cached = store.stat_cache.lookup([(target, stat_key(st))]).get(target)
    if cached is None:
        cached = digest_file(target, store.algorithm)
        store.stat_cache.remember([(target, stat_key(st), cached)], settled=settled)
    return cached.digest == entry.digest


def fetch_entry(store: Store, entry: Entry, label: str = "") -> str:
    """Return a local path holding one entry's verified bytes (fetching into the cache if needed).

    :param label: what the file belongs to (``name:vN``), for messages.
    """
    if entry.ref is not None:
        return ReferenceReader(store).local_copy(entry, label)
    if entry.chunks is None:
        path = store.blobs.local_copy(entry.digest)
        if store.backend.is_local and not store.blobs.verify(entry.digest):
            raise IntegrityError(f"{entry.path}: blob {entry.digest} is damaged; run `plait verify`", digest=entry.digest, path=entry.path)
        if not store.backend.is_local:
            _after_download(store, [path])
        return path
    target = os.path.join(store.files_cache_dir, "files", entry.digest[:2], entry.digest)
    if os.path.isfile(target):
        cache.touch(target)
    else:
        store.blobs.write_entry(entry.blobs, entry.digest, target, entry.path)
        _after_download(store, [target])
    return target
