"""Artifact: a draft of a new version, built up from files, folders, bytes and references.

Nothing is hashed or stored while a draft is built; :func:`plait.log` does that. Folders are
walked when they are added, so later changes to the folder's listing are not picked up, but a
file that vanished or changed by the time it is logged is refused with a clear error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plait.base.paths import user_cache_dir
from plait.base.places import parse_place
from plait.base.usersettings import load_user_settings
from plait.errors import InvalidPathError, NotFoundError, SourceError
from plait.formats.manifest import Entry
from plait.formats.names import check_entry_path, check_name
from plait.formats.records import check_json
from plait.formats.reference import identity_key, reference_of
from plait.storage.opener import open_source
from plait.storage.sources import MAX_OBJECTS


@dataclass(frozen=True, slots=True)
class FileSource:
    """A local file to be stored at ``path`` inside the version."""

    path: str
    local: str


@dataclass(frozen=True)
class BytesSource:
    """Bytes to be stored at ``path`` inside the version."""

    path: str
    data: bytes


@dataclass(frozen=True)
class ReferenceSource:
    """A file that stays where it is; its entry was built when it was added.

    :ivar checksum: read its bytes when the draft is logged and record their digest.
    """

    path: str
    entry: Entry
    checksum: bool = False


@dataclass(frozen=True)
class StoredSource:
    """A file a version already holds in a store, reused by its digest: nothing is read or copied.

    :ivar entry: the stored entry (its ``path`` is where it goes in the new version).
    :ivar origin: the ``name:vN`` it came from, for messages and to know its blobs are kept.
    :ivar store_id: the id of the store holding its blobs; the draft is logged there only.
    """

    path: str
    entry: Entry
    origin: str
    store_id: str | None


Source = FileSource | BytesSource | ReferenceSource | StoredSource


class Artifact:
    """A draft of a new artifact version.

    :param name: the artifact name (``[A-Za-z0-9][A-Za-z0-9._-]*``).
    :param type: ``dataset``, ``model``, ``result`` or any other word.
    :param description: free text (Markdown) shown with the version.
    :param metadata: JSON-serializable facts about the version.
    :param distributed_id: makes the draft one part of a version several workers contribute to:
        send it with :func:`plait.upsert`, and make the version once with :func:`plait.finish`.
    :raises InvalidNameError: for a bad name or distributed id.
    :raises InvalidMetadataError: for metadata that is not JSON.
    """

    def __init__(self, name: str, type: str = "dataset", description: str = "", metadata: Mapping[str, Any] | None = None,
                 *, distributed_id: str | None = None) -> None:
        self.name = check_name(name)
        self.distributed_id = None if distributed_id is None else check_name(distributed_id, what="distributed_id")
        self.type = check_name(type, what="artifact type")
        self.description = str(description or "")
        self.metadata: dict[str, Any] = dict(check_json(dict(metadata or {})))
        self._sources: dict[str, Source] = {}
        self._sorted: list[Source] | None = None  # ``sources``, kept until the draft changes

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} type={self.type!r} files={len(self._sources)}>"

    @property
    def sources(self) -> list[Source]:
        """The files added so far, sorted by path."""
        if self._sorted is None or len(self._sorted) != len(self._sources):
            self._sorted = [self._sources[p] for p in sorted(self._sources)]
        return list(self._sorted)

    def _add(self, source: Source) -> None:
        self._sources[source.path] = source
        self._sorted = None

    def add_file(self, path: str | os.PathLike[str], name: str | None = None) -> Artifact:
        """Add one local file, under its base name or ``name``.

        :param path: the local file.
        :param name: its path inside the version (relative, ``/``-separated).
        :returns: this draft, for chaining.
        :raises SourceError: if the file does not exist or is not a file.
        :raises InvalidPathError: if ``name`` would escape the version.
        """
        local = os.fspath(path)
        if not os.path.isfile(local):
            what = "a folder; use add_dir()" if os.path.isdir(local) else "not an existing file"
            raise SourceError(f"cannot add {local}: it is {what}", path=local)
        self._add(FileSource(check_entry_path(name if name is not None else os.path.basename(local)), os.path.abspath(local)))
        return self

    def add_dir(self, path: str | os.PathLike[str], prefix: str = "", *, follow_external_symlinks: bool = False) -> Artifact:
        """Add every file below a local folder, with paths relative to it.

        Symlinks to files and folders inside the folder are followed; a symlink that points
        outside it is refused unless ``follow_external_symlinks`` is set, so logging a folder
        never picks up files elsewhere by accident. A symlink that loops back into a folder
        holding it is refused either way. A plait store inside the folder (a project's
        ``.plait/``, with its cache) and plait's own cache folder are left out.

        :param path: the local folder.
        :param prefix: a folder inside the version to put the files under.
        :param follow_external_symlinks: also follow symlinks that leave the folder.
        :returns: this draft, for chaining.
        :raises SourceError: if the folder does not exist, cannot be read, or holds an external
            symlink or a symlink loop.
        :raises InvalidPathError: for a file name that is not UTF-8 or too long for an entry.
        """
        root = os.path.abspath(os.fspath(path))
        if not os.path.isdir(root):
            raise SourceError(f"cannot add {root}: it is not an existing folder", path=root)
        base = check_entry_path(prefix) + "/" if prefix else ""
        for local, rel in _walk(root, follow_external_symlinks):
            self._add(FileSource(check_entry_path(base + rel), local))
        return self

    def exclude(self, folders: list[str]) -> Artifact:
        """Drop the local files below any of ``folders`` (a store's own records) from this draft.

        :param folders: local folders (compared as given and resolved, not per file).
        :returns: this draft, for chaining.
        """
        roots = tuple({os.path.join(f, "") for f in folders} | {os.path.join(os.path.realpath(f), "") for f in folders})
        for key, src in list(self._sources.items()):
            if isinstance(src, FileSource) and src.local.startswith(roots):
                del self._sources[key]
                self._sorted = None
        return self

    def add_stored(self, entries: list[Entry], origin: str, store_id: str | None) -> Artifact:
        """Add entries a version already holds in a store, by digest (see :meth:`ArtifactVersion.new_draft`).

        Logging the draft reads and copies none of them; it is refused if their blobs are gone
        from the store by then (their version deleted and collected).

        :param entries: the stored entries.
        :param origin: the ``name:vN`` they come from.
        :param store_id: the id of the store that holds them.
        :returns: this draft, for chaining.
        """
        for entry in entries:
            self._add(StoredSource(entry.path, entry, origin, store_id))
        return self

    def remove(self, path: str) -> Artifact:
        """Take a file out of the draft, or every file below a folder.

        :param path: an entry path, or a folder inside the version (``images/train``).
        :returns: this draft, for chaining.
        :raises NotFoundError: if no file of the draft is at or below ``path``.
        """
        rel = check_entry_path(str(path).rstrip("/"))
        below = rel + "/"
        gone = [p for p in self._sources if p == rel or p.startswith(below)]
        if not gone:
            sample = ", ".join(sorted(self._sources)[:10]) + (" …" if len(self._sources) > 10 else "")
            raise NotFoundError(f"the draft of {self.name!r} has no file or folder {rel!r} (it has {sample or 'no files'})",
                                name=rel, candidates=sorted(self._sources))
        for p in gone:
            del self._sources[p]
        self._sorted = None
        return self

    def add_bytes(self, data: bytes, name: str) -> Artifact:
        """Add in-memory bytes as a file named ``name``.

        :returns: this draft, for chaining.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"add_bytes() takes bytes, not {type(data).__name__}")
        self._add(BytesSource(check_entry_path(name), bytes(data)))
        return self

    def add_json(self, value: Any, name: str) -> Artifact:
        """Add a JSON document (sorted keys, so equal values give equal bytes).

        :returns: this draft, for chaining.
        """
        check_json(value, what=f"the content of {name}")
        return self.add_bytes(json.dumps(value, sort_keys=True, indent=2).encode() + b"\n", name)

    def add_reference(self, uri: str, name: str | None = None, *, storage_options: Mapping[str, Any] | None = None,
                      checksum: bool = False, max_objects: int = MAX_OBJECTS) -> Artifact:
        """Record data that stays where it is (a bucket, a URL, a local path) without copying it.

        Each object found at ``uri`` (every object below it, for a prefix) is recorded with the
        strongest identity its source offers: S3 ETag and VersionId (on a versioned bucket), GCS
        generation and checksum, HTTP ETag and Last-Modified, a local file's size, mtime and
        inode. A read later returns exactly those bytes or refuses with
        :class:`~plait.ReferenceChangedError`. A prefix is listed whole before anything is added:
        a failure part-way adds nothing.

        :param uri: ``s3://bucket/prefix/``, ``https://…``, a local file or folder, any fsspec URL.
        :param name: the path inside the version for a single object (a prefix for many).
        :param storage_options: fsspec options to list it with (default: your settings'
            ``[storage."prefix"]``); the ones that say where it is (endpoint, region) are
            recorded, credentials never.
        :param checksum: also read every object once when the draft is logged and record the
            digest of its bytes; every later read is verified against it.
        :param max_objects: refuse a prefix holding more objects than this.
        :returns: this draft, for chaining.
        :raises NotFoundError: if nothing exists at ``uri``.
        :raises InvalidInputError: for a malformed URI, or a prefix past ``max_objects``.
        :raises SourceError: for an unknown scheme, missing credentials or an unreachable endpoint.
        """
        try:
            place = parse_place(str(uri))
        except ValueError as exc:
            raise InvalidPathError(f"cannot reference {uri!r}: {exc}", path=str(uri)) from None
        if storage_options is None:
            storage_options = load_user_settings().storage_options(str(uri))
        found = open_source(place.scheme, storage_options).list(str(place) if place.local else str(uri), max_objects)
        root = ("file://" + place.path) if place.local else str(uri)
        added = []
        below = root.rstrip("/") + "/"
        for info in found:
            if info.uri.startswith(below):  # an object below a prefix: its path relative to the prefix
                rel = info.uri[len(below):]
                rel = f"{name}/{rel}" if name else rel
            else:  # the object the URI names
                rel = name or os.path.basename(info.uri.rstrip("/"))
            ref = reference_of(info, storage_options)
            try:
                path = check_entry_path(rel)
                entry = Entry(path=path, digest=identity_key(ref, info.size), size=info.size, ref=ref)
            except (ValueError, InvalidPathError) as exc:
                raise InvalidPathError(f"cannot reference {info.uri}: {exc}", path=info.uri) from None
            added.append(ReferenceSource(path, entry, checksum))
        for source in added:  # all or nothing: a prefix that failed part-way added nothing
            self._add(source)
        return self


def _walk(root: str, follow_external: bool) -> list[tuple[str, str]]:
    """Return ``(path, relative path)`` of every file below ``root``, sorted.

    ``os.scandir`` already knows each entry's type: no ``lstat`` per file (20,000 of them cost
    ~0.09 s of a re-log). Only symlinks are resolved: one leaving ``root`` is refused unless
    ``follow_external``, and one to a folder the walk is already inside (a loop) always.
    """
    real_root = os.path.realpath(root)
    cache = os.path.realpath(user_cache_dir())
    out: list[tuple[str, str]] = []
    stack: list[tuple[str, str, str, frozenset[str]]] = [("", root, real_root, frozenset([real_root]))]
    while stack:
        rel_dir, folder, real_folder, holding = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except PermissionError:
            raise SourceError(f"cannot read folder {folder}: permission denied", path=folder) from None
        except OSError as exc:
            raise SourceError(f"cannot read folder {folder}: {exc.strerror or exc}", path=folder) from None
        if rel_dir and (is_store(entries) or real_folder == cache):
            continue  # a plait store inside the folder (its cache too), or plait's own cache, is never data to log
        for item in entries:
            rel = f"{rel_dir}{item.name}"
            if not item.is_symlink():
                if item.is_dir(follow_symlinks=False):
                    real = os.path.join(real_folder, item.name)
                    stack.append((rel + "/", item.path, real, holding | {real}))
                elif item.is_file(follow_symlinks=False):
                    out.append((item.path, rel))
                continue
            target = _link_target(item.path, real_root, follow_external)
            if target is None:
                continue  # dangling: nothing to log
            if os.path.isdir(target):
                if target in holding:
                    raise SourceError(f"{item.path} is a symlink to {target}, a folder that holds it: a loop; "
                                      "remove the link or log a folder without it", path=item.path)
                stack.append((rel + "/", item.path, target, holding | {target}))
            elif os.path.isfile(target):
                out.append((item.path, rel))
    return sorted(out, key=lambda t: t[1])


def is_store(entries: list[os.DirEntry[str]]) -> bool:
    """Tell whether a folder's entries are those of a plait store (``plait.json`` beside ``versions/`` or ``blobs/``)."""
    names = {e.name: e for e in entries if e.name in ("plait.json", "versions", "blobs")}
    return "plait.json" in names and any(n in names and names[n].is_dir() for n in ("versions", "blobs"))


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


def _inside(path: str, root: str) -> bool:
    real_root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), real_root]) == real_root
