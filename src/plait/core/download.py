"""download: write a version's files to a folder, each verified, never outside the folder."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from plait.core.backend import _tmp_name, _unlink
from plait.core.digest import FileDigest, digest_file, stat_key
from plait.core.errors import IntegrityError, InvalidPathError, NotFoundError
from plait.core.manifest import Entry
from plait.core.names import check_entry_path
from plait.core.parallel import parallel_map, parallel_map_batched

if TYPE_CHECKING:
    from plait.core.store import Store
    from plait.core.version import ArtifactVersion


def safe_join(dest: str, path: str) -> str:
    """Join an entry path under ``dest``, refusing anything that would land outside it.

    Symlinks already inside ``dest`` are resolved first, so a link planted there cannot
    redirect a write elsewhere.

    :raises InvalidPathError: if the result escapes ``dest``.
    """
    rel = check_entry_path(path)
    root = os.path.realpath(dest)
    full = os.path.realpath(os.path.join(root, *rel.split("/")))
    if os.path.commonpath([full, root]) != root:
        raise InvalidPathError(f"entry {path!r} would be written outside {dest}; refusing", path=path)
    return full


def download(version: ArtifactVersion, dest: str | os.PathLike[str] | None = None, *, paths: list[str] | None = None) -> str:
    """Write a version's files below ``dest`` and return the folder.

    See :meth:`plait.ArtifactVersion.download`.
    """
    store = version.store
    folder = os.fspath(dest) if dest is not None else os.path.join(store.cache_dir, "versions", version.name, version.version)
    entries = [version.entry(p) for p in paths] if paths is not None else version.files()
    targets = [(e, safe_join(folder, e.path)) for e in entries]  # every path is checked before anything is written
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    todo = [(e, t) for e, t in targets if not _already_there(store, e, t)]
    try:
        store.blobs.prefetch(d for e, _ in todo for d, _ in e.blobs)
    except IntegrityError as exc:  # name the file, not only the blob
        _undo(folder, [], created)
        owner = next((e.path for e, _ in todo if any(d == exc.digest for d, _ in e.blobs)), "")
        raise IntegrityError(f"{version.spec}/{owner}: {exc}", digest=exc.digest, path=owner) from None
    store.progress.start("downloading", sum(e.size for e, _ in todo))
    written: list[tuple[str, Entry]] = []

    def write(item: tuple[Entry, str]) -> None:
        entry, target = item
        if entry.ref is not None:
            _fetch_reference(entry, target)
        else:
            store.blobs.write_entry(entry.blobs, entry.digest, target, f"{version.spec}/{entry.path}")
            written.append((target, entry))
        store.progress.advance(entry.size)

    try:
        if store.backend.is_local:
            parallel_map_batched(write, todo, lambda item: item[0].size, 2)
        else:
            parallel_map(write, todo, max(2, store.blobs.workers))
    except BaseException:
        _undo(folder, [t for _, t in todo], created)  # a failed download leaves nothing behind
        raise
    finally:
        store.progress.finish()
    # every byte was verified as it was written: remember the copies, so checking them later reads nothing
    store.stat_cache.remember((t, stat_key(os.stat(t)), FileDigest(e.digest, e.size, e.chunks)) for t, e in written)
    return folder


def _undo(folder: str, targets: list[str], created: bool) -> None:
    """Remove what a failed download wrote: its files (and their folders, if it made ``folder``)."""
    if created:  # everything inside is ours; the empty folder stays, as before
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)
        return
    for target in targets:
        _unlink(target)


def _already_there(store: Store, entry: Entry, target: str) -> bool:
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if st.st_size != entry.size or entry.ref is not None:
        return False
    cached = store.stat_cache.lookup([(target, stat_key(st))]).get(target)
    if cached is None:
        cached = digest_file(target, store.algorithm)
        store.stat_cache.remember([(target, stat_key(st), cached)])
    return cached.digest == entry.digest


def fetch_entry(store: Store, entry: Entry) -> str:
    """Return a local path holding one entry's verified bytes (fetching into the cache if needed)."""
    if entry.ref is not None:
        target = os.path.join(store.cache_dir, "refs", entry.digest[:2], entry.digest)
        if not os.path.isfile(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _fetch_reference(entry, target)
        return target
    if entry.chunks is None:
        path = store.blobs.local_copy(entry.digest)
        if store.backend.is_local and not store.blobs.verify(entry.digest):
            raise IntegrityError(f"{entry.path}: blob {entry.digest} is damaged; run `plait verify`", digest=entry.digest, path=entry.path)
        return path
    target = os.path.join(store.cache_dir, "files", entry.digest[:2], entry.digest)
    if not os.path.isfile(target):
        store.blobs.write_entry(entry.blobs, entry.digest, target, entry.path)
    return target


def _fetch_reference(entry: Entry, target: str) -> None:
    from fsspec.core import url_to_fs

    assert entry.ref is not None
    fs, path = url_to_fs(entry.ref.uri)
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    tmp = _tmp_name(target)
    try:
        try:
            fs.get_file(path, tmp)
        except FileNotFoundError:
            raise NotFoundError(f"{entry.path}: the referenced {entry.ref.uri} no longer exists", name=entry.ref.uri) from None
        if os.path.getsize(tmp) != entry.size:
            raise IntegrityError(
                f"{entry.path}: {entry.ref.uri} has changed since it was logged (size {os.path.getsize(tmp)}, "
                f"expected {entry.size})",
                digest=entry.digest,
                path=entry.path,
            )
        os.replace(tmp, target)
    finally:
        _unlink(tmp)
