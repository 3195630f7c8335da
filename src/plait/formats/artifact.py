"""Artifact: a draft of a new version, built up from files, folders, bytes and references.

Nothing is hashed or stored while a draft is built; :func:`plait.log` does that. A folder is
recorded as that folder and listed when the draft is logged (see :mod:`plait.formats.walk`), so
the version holds the files it has then; a file added by name that vanished or changed by the
time it is logged is refused with a clear error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plait.base.places import parse_place
from plait.base.usersettings import load_user_settings
from plait.errors import InvalidPathError, NotFoundError, SourceError
from plait.formats.manifest import Entry
from plait.formats.names import check_entry_path, check_name
from plait.formats.records import check_json
from plait.formats.reference import identity_key, reference_of
from plait.formats.walk import DirSource, DraftWalk
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


#: The origin of a :class:`StoredSource` written straight into a store (``Store.write_file``),
#: not taken from a version: its blobs may sit in packs this process has not committed yet.
WRITTEN = "written"


@dataclass(frozen=True)
class StoredSource:
    """A file a store already holds, reused by its digest: nothing is read or copied.

    :ivar entry: the stored entry (its ``path`` is where it goes in the new version).
    :ivar origin: the ``name:vN`` it came from, for messages and to know its blobs are kept, or
        :data:`WRITTEN` for a file written straight into the store.
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
        self._dirs: list[DirSource] = []
        self._excluded: list[str] = []

    def __repr__(self) -> str:
        folders = f" folders={len(self._dirs)}" if self._dirs else ""
        return f"<Artifact {self.name!r} type={self.type!r} files={len(self._sources)}{folders}>"

    @property
    def sources(self) -> list[Source]:
        """The files of the draft, sorted by path: its folders are listed on each call.

        A format-2 store never asks for this list: it walks the draft folder by folder
        (:meth:`walk`), holding one folder's files at a time.

        :raises SourceError: for a folder that cannot be read, or holds an external symlink or a loop.
        """
        if not self._dirs:
            return [self._sources[p] for p in sorted(self._sources)]
        out: list[Source] = []
        for listing in self.walk():
            base = listing.path + "/" if listing.path else ""
            for group in listing.groups:
                prefix = os.path.join(group.local, "")
                out += [FileSource(base + n, prefix + n) for n in group.names]
            out += listing.added
        return sorted(out, key=lambda s: s.path)

    @property
    def added(self) -> list[Source]:
        """The sources added by name (files, bytes, references, stored entries), not the folders' files."""
        return list(self._sources.values())

    @property
    def folders(self) -> list[DirSource]:
        """The folders added whole, oldest first."""
        return list(self._dirs)

    def walk(self) -> DraftWalk:
        """Return a walk of the draft's folders, children before parents (see :mod:`plait.formats.walk`)."""
        return DraftWalk(self._dirs, self._sources, self._excluded)

    def _add(self, source: Source) -> None:
        self._sources[source.path] = source

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

        The draft records the folder, not its files: it is listed when the draft is logged (the
        version holds the files it has then), one folder at a time, so a draft of a million
        files holds no list of them. Files added by name later (``add_file``, ``add_bytes``)
        win over the folder's at their path, ``remove`` takes paths out of it, and a folder
        added later under the same prefix wins for a name both hold.

        Symlinks to files and folders inside the folder are followed; a symlink that points
        outside it is refused unless ``follow_external_symlinks`` is set, so logging a folder
        never picks up files elsewhere by accident. A symlink that loops back into a folder
        holding it is refused either way. These are found when the folder is listed: when the
        draft is logged (or its :attr:`sources` are asked for), not here. A plait store inside
        the folder (a project's ``.plait/``, with its cache) and plait's own cache folder are
        left out.

        :param path: the local folder.
        :param prefix: a folder inside the version to put the files under.
        :param follow_external_symlinks: also follow symlinks that leave the folder.
        :returns: this draft, for chaining.
        :raises SourceError: if the folder does not exist. When logged: if it cannot be read,
            or holds an external symlink or a symlink loop.
        :raises InvalidPathError: for a bad prefix. When logged: for a file name that is not
            UTF-8 or too long for an entry.
        """
        root = os.path.abspath(os.fspath(path))
        if not os.path.isdir(root):
            raise SourceError(f"cannot add {root}: it is not an existing folder", path=root)
        where = check_entry_path(prefix) if prefix else ""
        added = DirSource(where, root, bool(follow_external_symlinks))
        for key, src in list(self._sources.items()):  # the later addition wins: the folder's file over one named before
            if added.covers(key) and os.path.lexists(added.local_of(key)):
                del self._sources[key]
        self._dirs = [d for d in self._dirs if (d.path, d.local) != (where, root)] + [added]
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
        self._excluded = sorted(set(self._excluded) | {os.path.normpath(f) for f in folders})
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
        inside = [d for d in self._dirs if d.covers(rel) and os.path.lexists(d.local_of(rel))]
        whole = [d for d in self._dirs if d.path == rel or d.path.startswith(below)]
        if not gone and not inside and not whole:
            held = sorted(self._sources) + [f"{d.path or '.'}/ ({d.local})" for d in self._dirs]
            sample = ", ".join(held[:10]) + (" …" if len(held) > 10 else "")
            raise NotFoundError(f"the draft of {self.name!r} has no file or folder {rel!r} (it has {sample or 'no files'})",
                                name=rel, candidates=held)
        for p in gone:
            del self._sources[p]
        self._dirs = [d if d not in inside else DirSource(d.path, d.local, d.follow_external, d.removed | {rel})
                      for d in self._dirs if d not in whole]
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

