"""BaseStore: one plait store on one fsspec filesystem — blobs, manifests, version records and events.

Layout under the store root::

    plait.json                   format, hash algorithm and store id (created once, exclusively)
    blobs/ab/<digest>            (format 1) file contents and chunks, one object each; immutable
    packs/ab/<pack id>           (format 2) file contents, chunks and tree nodes, many per pack
                                 (see :mod:`plait.storage.packs`); immutable
    index/<ulid>-<h8>            (format 2) pack index files: which pack holds each blob
    manifests/ab/<digest>        (format 1) manifests (zlib JSON), by their own digest; immutable
    versions/<name>/<number>     version records; the exclusive create allocates the number
    events/<yyyy-mm-dd>/<ulid>   everything that happens, one immutable record each
    events/<yyyy-mm-dd>.<n>.segment  the events of an old day packed into one record (compact)
    gc/<ulid>                    what a gc found unreferenced (see :mod:`plait.store.marks`)
    cache/                       (local stores only) the SQLite index; safe to delete (downloads go to
                                 the user's cache, :attr:`BaseStore.files_cache_dir`)

The store is the source of truth; :class:`~plait.index.catalog.Catalog` indexes it locally.
This class holds the records; the public :class:`plait.Store` adds what is built on them
(versions as objects, runs, lineage, gc, sync).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import getpass
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from plait.base.ids import is_ulid, new_ulid, utcnow
from plait.base.paths import default_store_url, user_cache_dir
from plait.base.progress import NO_PROGRESS, Progress
from plait.base.usersettings import UserSettings, load_user_settings
from plait.errors import (
    ConflictError,
    CorruptRecordError,
    IntegrityError,
    NotFoundError,
    ProtectedAliasError,
    StoreError,
)
from plait.formats import records as R
from plait.formats.manifest import Manifest, decode_manifest, encode_manifest
from plait.formats.names import LATEST, Spec, check_alias, parse_spec
from plait.formats.settings import ALIASES_PROTECTED, SettingChange, check_setting, protects
from plait.formats.tree import Node, decode_node
from plait.formats.treeview import TreeManifest
from plait.index import settings as S
from plait.index import versions as V
from plait.index.catalog import Catalog
from plait.index.rows import VersionRow
from plait.index.statcache import NoStatCache, StatCache
from plait.storage.backend import Backend
from plait.storage.blobs import BlobStore
from plait.storage.digest import ALGORITHMS, XXH3_128, hash_bytes, is_digest
from plait.storage.packed import PackedBlobStore
from plait.storage.packindex import PackIndex
from plait.storage.packs import TARGET_BYTES
from plait.storage.urls import open_backend
from plait.store.lifecycle import relay_change
from plait.store.shared import SharedState, shared

#: The format of new stores: 2 keeps each version as a tree of nodes (see :mod:`plait.formats.tree`)
#: and its blobs and nodes in packs (see :mod:`plait.storage.packed`).
STORE_FORMAT = 2
#: Every format this plait reads and writes (a format-1 store keeps flat manifests and loose
#: blobs until ``plait migrate``).
STORE_FORMATS = (1, 2)
CONFIG_KEY = "plait.json"
#: How many times to try the next number when another writer took the one we chose.
MAX_ALLOCATION_TRIES = 10_000
#: Records a writer reads, at most, to find the same content logged since its index was synced.
UNSEEN_RECORDS_READ = 64
#: The shared-state slot of a store's pack index (one per URL and algorithm, read once per process).
_PACK_INDEX = "plait.pack-index:"
#: Manifests kept decoded in memory per store object.
MANIFEST_CACHE = 64
#: Tree nodes kept decoded in memory per store object (a node is at most a few thousand entries).
NODE_CACHE = 256


class BaseStore:
    """The records of a plait store at any fsspec URL.

    :param url: a local folder (default: see :func:`plait.base.paths.default_store_url`),
        ``memory://name``, ``s3://bucket/prefix``, ``gs://…``, ``az://…``.
    :param storage_options: passed to fsspec (credentials, ``endpoint_url``, …).
    :param hash: the hash algorithm for a new store (``xxh3-128`` or ``blake3``); an existing
        store keeps its own.
    :param format: the format of a new store (default :data:`STORE_FORMAT`; 1 keeps flat
        manifests, readable by older plait releases); an existing store keeps its own.
    :param allow_references: local folders and URL prefixes references may read, beyond the
        user settings' ``[references] allow`` (see :mod:`plait.store.refpolicy`).
    :param reference_options: fsspec options for reading references, by URL prefix (``""``:
        every reference), over the user settings' ``[storage."prefix"]`` tables.
    :raises UnsupportedStoreError: for an unknown protocol (with the ``pip install`` hint).
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, storage_options: Mapping[str, Any] | None = None,
                 hash: str = XXH3_128, allow_references: Iterable[str] = (),
                 reference_options: Mapping[str, Mapping[str, Any]] | None = None, format: int = STORE_FORMAT) -> None:
        self.url = os.fspath(url) if url is not None else default_store_url()
        #: what fsspec was given; kept so that another process can open the same store
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self.backend: Backend = open_backend(self.url, dict(self.storage_options))
        root = os.path.normpath(self.backend.local_path("")) if self.backend.is_local else ""
        if root and os.path.exists(root) and not os.path.isdir(root):
            raise StoreError(f"{self.url} is a file, not a store: give the folder of a store (--store or $PLAIT_STORE)")
        self._reader_overrides = (tuple(allow_references), dict(reference_options or {}))
        self._user_settings: UserSettings | None = None
        if hash not in ALGORITHMS:
            raise StoreError(f"unknown hash algorithm {hash!r}; choose one of {', '.join(ALGORITHMS)}")
        self.requested_hash = hash
        if format not in STORE_FORMATS:
            raise StoreError(f"unknown store format {format!r}; choose one of {', '.join(map(str, STORE_FORMATS))}")
        self.requested_format = format
        self._config: dict[str, Any] | None = None
        self._catalog: Catalog | None = None
        self._blobs: BlobStore | None = None
        self._stat_cache: NoStatCache | None = None
        self._manifests: OrderedDict[str, Manifest | TreeManifest] = OrderedDict()
        self._nodes: OrderedDict[str, Node] = OrderedDict()
        self._lock = threading.RLock()
        self.shared: SharedState = shared(self.url)
        self.shared.register(self)
        self.progress: Progress = NO_PROGRESS

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BaseStore) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def renew_after_fork(self) -> None:
        """Drop what this object holds from the process it was made in (called in a forked child):
        the index's SQLite connection and the stat cache's must not cross a fork, an async
        fsspec filesystem refuses to, and another thread may have held the locks."""
        self._lock = threading.RLock()
        self.backend = open_backend(self.url, dict(self.storage_options))
        self._catalog = None
        self._blobs = None
        self._stat_cache = None

    # -- configuration --------------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """The store's ``plait.json`` (format, algorithm, id); empty defaults if not created yet."""
        if self._config is None:
            try:
                data = self.backend.read(CONFIG_KEY)
            except FileNotFoundError:
                return {"format": self.requested_format, "algorithm": self.requested_hash, "id": None}
            self._config = _parse_config(data, self.url)
        return self._config

    def init(self) -> BaseStore:
        """Create the store if it does not exist yet (idempotent); return it.

        :raises UnsupportedStoreError: if the filesystem cannot create records exclusively.
        """
        if self._config is not None and self._config.get("id"):
            return self
        self.backend.require_writable()
        body = {"format": self.requested_format, "algorithm": self.requested_hash, "id": new_ulid(), "created_at": utcnow()}
        try:
            self.backend.create(CONFIG_KEY, json.dumps(body, indent=2).encode())
        except (NotADirectoryError, PermissionError, IsADirectoryError, FileExistsError) as exc:
            raise StoreError(f"cannot create a store at {self.url}: {exc.strerror or exc}. "
                             "Choose a folder you can write to (--store or $PLAIT_STORE).") from exc
        self._config = None
        _ = self.config
        return self

    @property
    def user_settings(self) -> UserSettings:
        """This user's settings (:mod:`plait.base.usersettings`) with this store object's additions.

        :raises SettingsError: for a malformed settings file.
        """
        if self._user_settings is None:
            allow, options = self._reader_overrides
            self._user_settings = load_user_settings().with_overrides(allow=allow, storage=options)
        return self._user_settings

    @property
    def exists(self) -> bool:
        """Tell whether the store has been created."""
        return bool(self.config.get("id"))

    @property
    def format(self) -> int:
        """The store's format: 2 keeps versions as trees of nodes and blobs in packs, 1 as flat
        manifests and one object per blob (as plait wrote before format 2)."""
        return int(self.config["format"])

    @property
    def algorithm(self) -> str:
        """The hash algorithm of this store."""
        return str(self.config["algorithm"])

    @property
    def id(self) -> str | None:
        """The store's unique id (a ULID), or ``None`` before it is created."""
        return self.config.get("id")

    @property
    def cache_dir(self) -> str:
        """The local folder for this store's index and fetched blobs.

        A local store keeps it inside itself (``<root>/cache``) when the folder is this user's
        and writable; a store on a read-only mount, or another user's, gets one in the user's
        cache folder, so that reading it writes nothing into it.
        """
        if self.backend.is_local:
            root = os.path.normpath(self.backend.local_path(""))
            if not os.path.exists(root) or _own_writable_folder(root):
                return self.backend.local_path("cache")
        return self.files_cache_dir

    @property
    def files_cache_dir(self) -> str:
        """The folder in the user's cache (never inside the store) for this store's downloads:
        versions fetched without a destination, files assembled from chunks, remote blobs.

        See :mod:`plait.store.cache` for its bound and ``plait cache``.
        """
        if self.backend.protocol == "memory":
            return self.shared.scratch_dir()
        where = os.path.realpath(os.path.normpath(self.backend.local_path(""))) if self.backend.is_local else self.url
        return str(user_cache_dir() / "stores" / hash_bytes(where.encode())[:16])

    # -- collaborators --------------------------------------------------------------------------

    @property
    def blobs(self) -> BlobStore:
        """The blob store (one per Store object, made by the first thread to ask)."""
        blobs = self._blobs
        if blobs is None:
            # threads logging through a new Store at once must share one: the open packs of a
            # second one would be lost with it (their nodes "missing from the store")
            with self._lock:
                if self._blobs is None:
                    if self.format == 1:
                        self._blobs = BlobStore(self.backend, self.algorithm, self.files_cache_dir)
                    else:
                        self._blobs = self.packed_blobs(loose="migrated_from" in self.config)
                blobs = self._blobs
        return blobs

    def packed_blobs(self, *, loose: bool) -> PackedBlobStore:
        """Return a blob store writing packs on this store's backend (its pack index shared by
        the store objects of this URL).

        :param loose: whether loose format-1 blobs may exist (a migrated store).
        """
        backend, algorithm, cache_dir = self.backend, self.algorithm, self.cache_dir  # not inside the slot's lock
        index = self.shared.slot(f"{_PACK_INDEX}{algorithm}", lambda: PackIndex(backend, algorithm, cache_dir))
        target = int((self.config.get("packs") or {}).get("target_bytes") or TARGET_BYTES)
        return PackedBlobStore(backend, algorithm, self.files_cache_dir, index, target=target, loose=loose)

    def reload_config(self) -> None:
        """Read ``plait.json`` afresh (after a migration changed the format) and open the blob store again."""
        with self._lock:
            self._config = None
            self._blobs = None

    @property
    def stat_cache(self) -> NoStatCache:
        """The stat cache used when logging local files."""
        if self._stat_cache is None:
            if os.environ.get("PLAIT_NO_STAT_CACHE"):
                self._stat_cache = NoStatCache()
            else:
                self._stat_cache = StatCache(user_cache_dir() / f"stat-{self.algorithm}.sqlite")
        return self._stat_cache

    @property
    def catalog(self) -> Catalog:
        """The local SQLite index, synced with the store on every access."""
        self.shared.events.flush()  # read your own writes
        with self._lock:
            catalog = self._open_catalog()
            catalog.sync()
            return catalog

    def _open_catalog(self) -> Catalog:
        """Return the index without syncing it (``reindex`` clears it first: one read, not two)."""
        with self._lock:
            if self._catalog is None:
                self._catalog = Catalog(os.path.join(self.cache_dir, "index.sqlite"), self.backend, self.id or "")
            return self._catalog

    def reindex(self) -> int:
        """Rebuild the index from the store alone; return the number of versions indexed.

        The index file is deleted and made afresh, whatever state it was in.
        """
        with self._lock:
            if self._catalog is None:
                Catalog.remove(os.path.join(self.cache_dir, "index.sqlite"))
            else:
                self._catalog.discard()
                self._catalog = None
        catalog = self._open_catalog()
        catalog.reset(self.id or "")
        catalog.sync(force=True)
        known = set(V.keys(catalog))
        missing = []  # version records whose event never made it (a writer died in between)
        for key in self.backend.find("versions"):
            found = record_key(key)
            if found is not None and found not in known:
                missing.append(key)
        for key, data in self.backend.read_many(missing).items():
            found = record_key(key)
            assert found is not None
            try:
                catalog.add_version(R.decode_version(data, *found))
            except CorruptRecordError:
                continue  # verify reports it
        return V.count(catalog)

    # -- manifests and version records ----------------------------------------------------------

    def put_manifest(self, manifest: Manifest) -> str:
        """Store a manifest (if new) and return its digest."""
        digest = manifest.digest
        key = manifest_key(digest)
        if not self.backend.exists(key):  # encode only when new
            self.backend.write(key, encode_manifest(manifest)[1])
        self._remember_manifest(digest, manifest)
        return digest

    def manifest(self, digest: str) -> Manifest | TreeManifest:
        """Return the manifest with this digest, verified: a lazy view of its tree on a format-2
        store (a flat manifest where the store holds one under that digest), else a flat one.

        :raises CorruptRecordError: if it is missing or damaged.
        """
        with self._lock:
            if digest in self._manifests:
                self._manifests.move_to_end(digest)
                return self._manifests[digest]
        if not is_digest(digest, self.algorithm):
            raise CorruptRecordError(f"{digest!r} is not a manifest digest of this store", key=digest)
        key = manifest_key(digest)
        manifest: Manifest | TreeManifest
        if self.format >= 2 and (self.blobs.has(digest) or not self.backend.exists(key)):
            manifest = TreeManifest(digest, self.algorithm, self.node)
        else:
            try:
                data = self.backend.read(key)
            except FileNotFoundError:
                raise CorruptRecordError(f"manifest {digest} is missing from the store", key=key) from None
            manifest = decode_manifest(data, digest, key)
        self._remember_manifest(digest, manifest)
        return manifest

    def node(self, digest: str) -> Node:
        """Return a tree node, read once and verified, then kept in a small in-memory cache.

        :raises CorruptRecordError: if it is missing, damaged or malformed.
        """
        with self._lock:
            node = self._nodes.get(digest)
            if node is not None:
                self._nodes.move_to_end(digest)
                return node
        try:
            data = self.blobs.read(digest)
        except IntegrityError as exc:
            missing = "missing" in str(exc)
            raise CorruptRecordError(f"tree node {digest} is {'missing from the store' if missing else 'damaged'}; "
                                     "run `plait verify` to see which versions need it", key=digest) from None
        return self._keep_node(decode_node(data, digest))

    def keep_node(self, data: bytes) -> Node:
        """Keep a node this process has just encoded and stored in the node cache, so that reading
        it back (a new version's root) costs no request; return it decoded."""
        return self._keep_node(decode_node(data, hash_bytes(data, self.algorithm)))

    def _keep_node(self, node: Node) -> Node:
        with self._lock:
            self._nodes[node.digest] = node
            while len(self._nodes) > NODE_CACHE:
                self._nodes.popitem(last=False)
        return node

    def _remember_manifest(self, digest: str, manifest: Manifest | TreeManifest) -> None:
        with self._lock:
            self._manifests[digest] = manifest
            while len(self._manifests) > MANIFEST_CACHE:
                self._manifests.popitem(last=False)

    def create_version(self, fields: dict[str, Any]) -> R.VersionRecord:
        """Allocate the next version number of ``fields['name']`` and create its record.

        The number follows every one in ``versions/<name>/`` and every one the index knows (a
        version whose record was deleted or damaged keeps its number: verify reports it, and no
        new version silently takes its place); the exclusive create makes sure two writers never
        get the same one: the loser moves on to the next number.
        """
        return self._allocate(fields, same_content=False)[0]

    def create_or_find_version(self, fields: dict[str, Any]) -> tuple[R.VersionRecord, bool]:
        """As :meth:`create_version`, unless another writer has just made a version of the name
        with the same ``fields['digest']``: then return that one's record; and whether it is new.

        Writers logging the same content at once (workers of a pool preparing the same data)
        thus make one version. Each looks at the records the index does not know yet, and a
        writer that loses the race for a number reads the record that won it.
        """
        return self._allocate(fields, same_content=True)

    def _allocate(self, fields: dict[str, Any], *, same_content: bool) -> tuple[R.VersionRecord, bool]:
        self.init()
        self.blobs.commit()  # packs, then the index file listing them, then the record naming them
        self.blobs.end()
        name = fields["name"]
        taken = [int(n) for n in self.backend.listdir(f"versions/{name}") if n.isdigit()]
        catalog = self.catalog
        known = V.highest_known(catalog, name)
        number = max(max(taken, default=-1), -1 if known is None else known) + 1
        if same_content:
            indexed = V.live_named(catalog, name, fields["digest"])  # synced since the caller looked
            # else made since this sync: the newest few records the index lacks, oldest first
            unseen = sorted(n for n in taken if known is None or n > known)[-UNSEEN_RECORDS_READ:]
            found = self._record_with(name, [indexed.number] if indexed is not None else unseen, fields["digest"])
            if found is not None:
                return found, False
        for _ in range(MAX_ALLOCATION_TRIES):
            record = R.build(R.VersionRecord, f"the version record of {name!r}", number=number, algorithm=self.algorithm, **fields)
            if self.backend.create(R.version_key(name, number), R.encode(record)):
                if self._catalog is not None:  # the announcing event finds it indexed: no read back
                    self._catalog.add_version(record)
                return record, True
            found = self._record_with(name, [number], fields["digest"]) if same_content else None
            if found is not None:
                return found, False
            number += 1
        raise ConflictError(f"could not allocate a version number for {name!r}", key=f"versions/{name}")

    def _record_with(self, name: str, numbers: list[int], digest: str) -> R.VersionRecord | None:
        """Return the first readable record among ``name``'s ``numbers`` holding ``digest``,
        indexed at once (its writer announces it in a moment), or ``None``."""
        if not numbers:
            return None
        found = self.backend.read_many([R.version_key(name, n) for n in numbers])
        for number in numbers:
            data = found.get(R.version_key(name, number))
            if data is None:
                continue
            try:
                record = R.decode_version(data, name, number)
            except CorruptRecordError:
                continue  # reported by verify; never taken for this content
            if record.digest == digest:
                self._open_catalog().add_version(record)
                return record
        return None

    def read_version_record(self, name: str, number: int) -> R.VersionRecord:
        """Read a version record straight from the store (bypassing the index)."""
        key = R.version_key(name, number)
        try:
            return R.decode_version(self.backend.read(key), name, number)
        except FileNotFoundError:
            raise NotFoundError(f"{name}:v{number} does not exist", name=f"{name}:v{number}") from None

    # -- events ---------------------------------------------------------------------------------

    def write_event(self, kind: str, data: dict[str, Any], run: str | None = None, user: str | None = None,
                    *, background: bool = False) -> R.Event:
        """Append one event to the store's log and to the local index.

        :param background: queue the event for the store's writer thread and return at once
            (run bookkeeping: see :mod:`plait.store.events`); otherwise write it now, after
            everything queued before it.
        """
        event = R.build(R.Event, f"the {kind} event", id=new_ulid(), kind=kind, time=utcnow(), user=user or current_user(),
                        run=run, data=data)
        if background:
            self.shared.events.submit(self, event)
            return event
        self.append_event(event)
        relay_change(self, event)  # after it is in the store: plugins hear of what happened, once
        return event

    def append_event(self, event: R.Event) -> R.Event:
        """Write a fully formed event (its id must be new) and fold it into the local index.

        :raises ConflictError: if an event with that id already exists.
        """
        self.shared.events.flush()
        self.write_event_record(event)
        self.fold_events([event])
        return event

    def refresh(self) -> None:
        """Bring the index up to date with the store now, to see what other processes just wrote.

        Every query syncs the index first, but a remote store (S3, GCS, …) is listed at most once
        a second (``$PLAIT_SYNC_INTERVAL``); this lists it at once.
        """
        self.shared.events.flush()
        with self._lock:
            self._open_catalog().sync(force=True)

    def flush(self) -> None:
        """Wait until every event queued for the background writer is in the store.

        Runs queue their start, end and uses; a top-level run's end, any version logged and
        interpreter exit flush them, so call this only before handing the store to another
        process while a run is still going.

        :raises StoreError: if a queued event could not be written (it stays queued; flush again
            to retry).
        """
        self.shared.events.flush()

    def write_event_record(self, event: R.Event) -> None:
        """Create one event's record in the store (the writer thread calls this)."""
        self.init()
        if not self.backend.create(event.key, R.encode(event)):
            raise ConflictError(f"event {event.key} already exists", key=event.key)

    def fold_events(self, events: list[R.Event]) -> None:
        """Fold events already in the store into the index, if it is open."""
        if self._catalog is not None:
            self._catalog.fold(events)

    # -- store settings (see plait.formats.settings) ---------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Return every store setting that is set, by key."""
        return S.every(self.catalog)

    def setting(self, key: str, default: Any = None) -> Any:
        """Return the value of one store setting, or ``default`` when it is not set.

        :raises InvalidNameError: for a malformed key.
        """
        found, value = S.value(self.catalog, R.check_setting_key(key))
        return value if found else default

    def set_setting(self, key: str, value: Any, *, run: str | None = None) -> bool:
        """Set a store setting for everyone using the store (``None`` unsets it); the change is an event.

        :param key: dotted lowercase words, e.g. ``references.allow``.
        :param value: any JSON value a known key takes.
        :param run: the run it happens in, if any.
        :returns: whether anything changed.
        :raises SettingsError: for a malformed key or a value the key does not take.
        """
        value = check_setting(key, value)
        found, old = S.value(self.catalog, key)
        if (found and old == value) or (value is None and not found):
            return False
        self.write_event(R.SETTING_SET, {"key": key, "value": value, "old": old}, run=run)
        return True

    def setting_history(self, key: str | None = None) -> list[SettingChange]:
        """Return every change of the store's settings (or of one key), oldest first."""
        return [SettingChange(e.time, e.data["key"], e.data["value"], e.data.get("old"), e.user, e.run)
                for e in S.history(self.catalog, key)]

    # -- names, numbers and aliases -------------------------------------------------------------

    def resolve(self, spec: str | Spec) -> tuple[str, int]:
        """Return ``(name, number)`` for a spec, or raise listing what exists.

        :raises InvalidNameError: for a malformed spec.
        :raises NotFoundError: for an unknown name, version or alias.
        """
        parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
        catalog = self.catalog
        name = parsed.name
        if parsed.number is not None:
            row = V.version(catalog, name, parsed.number)
            if row is None:
                try:
                    catalog.add_version(self.read_version_record(name, parsed.number))
                    row = V.version(catalog, name, parsed.number)
                except NotFoundError:
                    row = None
            if row is None or row.deleted:
                raise self.unknown(name, f"version v{parsed.number}", deleted=row is not None)
            return name, parsed.number
        if parsed.alias == LATEST:
            number = V.latest_number(catalog, name)
            if number is None:
                raise self.unknown(name, "any version")
            return name, number
        number = V.alias_number(catalog, name, parsed.alias or "")
        if number is None:
            raise self.unknown(name, f"alias {parsed.alias!r}")
        return name, number

    def row(self, spec: str | Spec) -> VersionRow:
        """Return the index row of the live version a spec names.

        :raises NotFoundError: listing what exists.
        """
        name, number = self.resolve(spec)
        row = V.version(self.catalog, name, number)
        assert row is not None
        return row

    def unknown(self, name: str, what: str, *, deleted: bool = False) -> NotFoundError:
        """Return the error for a missing version or alias, listing what exists (and saying when
        the version, or every version of the name, was deleted)."""
        catalog = self.catalog
        numbers = V.live_numbers(catalog, name)
        if not numbers:
            names = V.names(catalog)
            listing = ", ".join(names[:20]) + (" …" if len(names) > 20 else "") if names else "none yet"
            gone = f": every version of it was deleted, see plait history {name}" if V.numbers(catalog, name) else ""
            return NotFoundError(f"no artifact named {name!r} in {self.url}{gone} (artifacts: {listing})", name=name,
                                 candidates=names)
        aliases = sorted({a for lst in V.aliases_of(catalog, name).values() for a in lst})
        listing = ", ".join(f"v{n}" for n in numbers[-10:]) + (", aliases: " + ", ".join(aliases) if aliases else "")
        gone = f": it was deleted, see plait history {name}:{what.split()[-1]}" if deleted else ""
        return NotFoundError(f"{name!r} has no {what}{gone} (it has {listing})", name=name,
                             candidates=[f"v{n}" for n in numbers] + aliases)

    def is_protected(self, name: str, alias: str) -> bool:
        """Tell whether ``alias`` of artifact ``name`` is protected by the store setting ``aliases.protected``."""
        return protects(self.setting(ALIASES_PROTECTED), name, alias)

    def check_alias_change(self, name: str, alias: str, *, force_protected: bool = False, doing: str = "move") -> bool:
        """Check that ``alias`` of ``name`` may change; return whether it is a protected one (forced).

        :param force_protected: the caller means to change a protected alias (recorded in the event).
        :param doing: what the change is, for the message (``move``, ``remove``).
        :raises ProtectedAliasError: for a protected alias without ``force_protected``.
        """
        if not self.is_protected(name, alias):
            return False
        if not force_protected:
            raise ProtectedAliasError(
                f"{name}:{alias} is protected (store setting {ALIASES_PROTECTED}): to {doing} it pass force_protected=True "
                f"(plait alias ... --protected); in the dashboard only an admin may", alias=f"{name}:{alias}")
        return True

    def set_alias(self, spec: str, alias: str, run: str | None = None, *, force_protected: bool = False) -> None:
        """Point ``alias`` at the version ``spec`` names, moving it from wherever it was.

        :param force_protected: needed to set or move a protected alias (the event records it).
        :raises ProtectedAliasError: for a protected alias without ``force_protected``; nothing is written.
        """
        check_alias(alias)
        name, number = self.resolve(spec)
        old = V.alias_number(self.catalog, name, alias)
        if old == number:
            return
        data: dict[str, Any] = {"name": name, "alias": alias, "number": number, "old": old}
        if self.check_alias_change(name, alias, force_protected=force_protected, doing="move" if old is not None else "set"):
            data["protected"] = True
        self.write_event(R.ALIAS_SET, data, run=run)

    def remove_alias(self, spec: str, alias: str, run: str | None = None, *, force_protected: bool = False) -> None:
        """Remove ``alias`` from the version ``spec`` names.

        :param force_protected: needed to remove a protected alias (the event records it).
        :raises NotFoundError: if the alias is not on that version.
        :raises ProtectedAliasError: for a protected alias without ``force_protected``; nothing is written.
        """
        check_alias(alias)
        name, number = self.resolve(spec)
        if V.alias_number(self.catalog, name, alias) != number:
            raise NotFoundError(f"{name}:v{number} has no alias {alias!r}", name=f"{name}:{alias}")
        data: dict[str, Any] = {"name": name, "alias": alias, "number": number}
        if self.check_alias_change(name, alias, force_protected=force_protected, doing="remove"):
            data["protected"] = True
        self.write_event(R.ALIAS_REMOVED, data, run=run)

    def delete(self, spec: str, *, force: bool = False, run: str | None = None, force_protected: bool = False,
               reason: str | None = None) -> None:
        """Delete a version (recorded as an event); its unique blobs become collectable by ``gc``.

        :param force: also drop the aliases pointing at it (otherwise they must be moved first).
        :param force_protected: with ``force``, also drop protected aliases.
        :param reason: why, kept in the event (``plait gc`` says which TTL or policy expired it).
        :raises StoreError: if aliases still point at it and ``force`` is not set.
        :raises ProtectedAliasError: if a protected alias points at it and ``force_protected`` is not set.
        """
        name, number = self.resolve(spec)
        aliases = V.aliases_of(self.catalog, name, number).get(number, [])
        if aliases and not force:
            raise StoreError(
                f"{name}:v{number} still has aliases {', '.join(aliases)}; move them first or pass force=True (--force)"
            )
        protected = {a for a in aliases if self.check_alias_change(name, a, force_protected=force_protected, doing="remove")}
        for alias in aliases:
            self.write_event(R.ALIAS_REMOVED, {"name": name, "alias": alias, "number": number,
                                               **({"protected": True} if alias in protected else {})}, run=run)
        self.write_event(R.VERSION_DELETED, {"name": name, "number": number, **({"reason": reason} if reason else {})},
                         run=run)


def manifest_key(digest: str) -> str:
    """Return the store key of a manifest."""
    return f"manifests/{digest[:2]}/{digest}"


def record_key(key: str) -> tuple[str, int] | None:
    """Return ``(name, number)`` for a key ``versions/<name>/<number>``, else ``None``."""
    parts = key.split("/")
    return (parts[1], int(parts[2])) if len(parts) == 3 and parts[0] == "versions" and parts[2].isdigit() else None


def _parse_config(data: bytes, url: str) -> dict[str, Any]:
    damaged = StoreError(f"{url}/plait.json is damaged; it should hold the store's format, hash algorithm and id "
                         "(restore it from a copy of the store)")
    try:
        config = json.loads(data)
    except (ValueError, RecursionError):
        raise damaged from None
    if not isinstance(config, dict) or not isinstance(config.get("id"), str) or not is_ulid(config["id"]):
        raise damaged
    if config.get("format") not in STORE_FORMATS:
        raise StoreError(f"{url} is a format {config.get('format')!r} store; this plait reads formats "
                         f"{' and '.join(map(str, STORE_FORMATS))}: upgrade plait")
    if config.get("algorithm") not in ALGORITHMS:
        raise StoreError(f"{url} hashes with {config.get('algorithm')!r}, which this plait does not know")
    return config


def _own_writable_folder(path: str) -> bool:
    """Tell whether ``path`` is a folder this user owns and may write (not a read-only mount)."""
    try:
        owned = os.stat(path).st_uid == os.getuid() if hasattr(os, "getuid") else True
    except OSError:
        return False
    return owned and os.access(path, os.W_OK)


#: Who acts in this context when it is not this process's user (a dashboard request, see :func:`acting_as`).
_ACTING_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar("plait_acting_user", default=None)


def current_user() -> str:
    """Return who is acting: the user of :func:`acting_as`, else ``$PLAIT_USER``, else the OS login name."""
    return _ACTING_USER.get() or os.environ.get("PLAIT_USER") or _login_name()


@contextlib.contextmanager
def acting_as(user: str) -> Iterator[None]:
    """Record every event written in this context as written by ``user`` (a server acting for a login)."""
    token = _ACTING_USER.set(user)
    try:
        yield
    finally:
        _ACTING_USER.reset(token)


@functools.cache
def _login_name() -> str:
    """The OS login name, looked up once per process (``getpwuid`` is a system call)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
