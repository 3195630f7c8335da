"""Store: one plait store on one fsspec filesystem — blobs, manifests, versions and events.

Layout under the store root::

    plait.json                   format, hash algorithm and store id (created once, exclusively)
    blobs/ab/<digest>            file contents and chunks; immutable
    manifests/ab/<digest>        manifests (zlib JSON), by their own digest; immutable
    versions/<name>/<number>     version records; the exclusive create allocates the number
    events/<yyyy-mm-dd>/<ulid>   everything that happens, one immutable record each
    events/<yyyy-mm-dd>.<n>.segment  the events of an old day packed into one record (compact)
    cache/                       (local stores only) the SQLite index; safe to delete

The store is the source of truth; :class:`~plait.core.catalog.Catalog` indexes it locally.
"""

from __future__ import annotations

import atexit
import functools
import getpass
import json
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from plait.core import records as R
from plait.core.backend import Backend, open_backend
from plait.core.blobs import BlobStore
from plait.core.catalog import version_columns
from plait.core.config import default_store_url, user_cache_dir
from plait.core.digest import ALGORITHMS, XXH3_128, hash_bytes, is_digest
from plait.core.errors import ConflictError, CorruptRecordError, NotFoundError, StoreError
from plait.core.eventwriter import writer_for
from plait.core.ids import new_ulid, utcnow
from plait.core.manifest import Manifest, decode_manifest, encode_manifest
from plait.core.names import LATEST, Spec, check_alias, check_name, parse_spec
from plait.core.progress import NO_PROGRESS, Progress
from plait.core.statcache import NoStatCache, StatCache

if TYPE_CHECKING:
    from plait.core.catalog import Catalog
    from plait.core.lineage import LineageGraph
    from plait.core.run import Run
    from plait.core.version import ArtifactVersion

STORE_FORMAT = 1
CONFIG_KEY = "plait.json"
#: How many times to try the next number when another writer took the one we chose.
MAX_ALLOCATION_TRIES = 10_000


class Store:
    """A plait store at any fsspec URL.

    :param url: a local folder (default: see :func:`plait.core.config.default_store_url`),
        ``memory://name``, ``s3://bucket/prefix``, ``gs://…``, ``az://…``.
    :param storage_options: passed to fsspec (credentials, ``endpoint_url``, …).
    :param hash: the hash algorithm for a new store (``xxh3-128`` or ``blake3``); an existing
        store keeps its own.
    :raises UnsupportedStoreError: for an unknown protocol (with the ``pip install`` hint).
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, storage_options: Mapping[str, Any] | None = None, hash: str = XXH3_128) -> None:
        self.url = os.fspath(url) if url is not None else default_store_url()
        self.backend: Backend = open_backend(self.url, dict(storage_options or {}))
        if hash not in ALGORITHMS:
            raise StoreError(f"unknown hash algorithm {hash!r}; choose one of {', '.join(ALGORITHMS)}")
        self._requested_hash = hash
        self._config: dict[str, Any] | None = None
        self._catalog: Catalog | None = None
        self._blobs: BlobStore | None = None
        self._stat_cache: NoStatCache | None = None
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
        self._lock = threading.RLock()
        self._events = writer_for(self.url)
        self.progress: Progress = NO_PROGRESS

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    # -- configuration --------------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """The store's ``plait.json`` (format, algorithm, id); empty defaults if not created yet."""
        if self._config is None:
            try:
                data = self.backend.read(CONFIG_KEY)
            except FileNotFoundError:
                return {"format": STORE_FORMAT, "algorithm": self._requested_hash, "id": None}
            self._config = _parse_config(data, self.url)
        return self._config

    def init(self) -> Store:
        """Create the store if it does not exist yet (idempotent); return it.

        :raises UnsupportedStoreError: if the filesystem cannot create records exclusively.
        """
        if self._config is not None and self._config.get("id"):
            return self
        self.backend.require_writable()
        body = {"format": STORE_FORMAT, "algorithm": self._requested_hash, "id": new_ulid(), "created_at": utcnow()}
        try:
            self.backend.create(CONFIG_KEY, json.dumps(body, indent=2).encode())
        except (NotADirectoryError, PermissionError, IsADirectoryError, FileExistsError) as exc:
            raise StoreError(f"cannot create a store at {self.url}: {exc.strerror or exc}. "
                             "Choose a folder you can write to (--store or $PLAIT_STORE).") from exc
        self._config = None
        _ = self.config
        return self

    @property
    def exists(self) -> bool:
        """Tell whether the store has been created."""
        return bool(self.config.get("id"))

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
        """The local folder for this store's index and fetched blobs."""
        if self.backend.is_local:
            return self.backend.local_path("cache")
        if self.backend.protocol == "memory":
            return _memory_cache_dir(self.url)
        return str(user_cache_dir() / "stores" / hash_bytes(self.url.encode())[:16])

    # -- collaborators --------------------------------------------------------------------------

    @property
    def blobs(self) -> BlobStore:
        """The blob store."""
        if self._blobs is None:
            self._blobs = BlobStore(self.backend, self.algorithm, self.cache_dir)
        return self._blobs

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
        """The local SQLite index, synced with the store on every query."""
        self._events.flush()  # read your own writes
        with self._lock:
            catalog = self._open_catalog()
            catalog.sync()
            return catalog

    def _open_catalog(self) -> Catalog:
        """Return the index without syncing it (``reindex`` clears it first: one read, not two)."""
        with self._lock:
            if self._catalog is None:
                from plait.core.catalog import Catalog

                catalog = Catalog(os.path.join(self.cache_dir, "index.sqlite"), self.backend)
                if catalog.query("SELECT value FROM meta WHERE key = 'store'") != [(self.id or "",)]:
                    catalog.clear()
                    with catalog._tx() as db:
                        db.execute("INSERT OR REPLACE INTO meta VALUES ('store', ?)", (self.id or "",))
                self._catalog = catalog
            return self._catalog

    def reindex(self) -> int:
        """Rebuild the index from the store alone; return the number of versions indexed."""
        catalog = self._open_catalog()
        catalog.clear()
        with catalog._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('store', ?)", (self.id or "",))
        catalog.sync(force=True)
        known = {(n, int(v)) for n, v in catalog.query("SELECT name, number FROM versions")}
        missing = []  # version records whose event never made it (a writer died in between)
        for key in self.backend.find("versions"):
            parts = key.split("/")
            if len(parts) == 3 and parts[2].isdigit() and (parts[1], int(parts[2])) not in known:
                missing.append(key)
        for key, data in self.backend.read_many(missing).items():
            try:
                catalog.add_version(R.decode(R.VersionRecord, data, key))
            except CorruptRecordError:
                continue
        return catalog.query("SELECT COUNT(*) FROM versions")[0][0]

    # -- records --------------------------------------------------------------------------------

    def put_manifest(self, manifest: Manifest) -> str:
        """Store a manifest (if new) and return its digest."""
        digest = manifest.digest
        key = f"manifests/{digest[:2]}/{digest}"
        if not self.backend.exists(key):  # encode only when new: a re-log of 20,000 files saves ~0.1 s
            self.backend.write(key, encode_manifest(manifest)[1])
        self._remember_manifest(digest, manifest)
        return digest

    def manifest(self, digest: str) -> Manifest:
        """Return the manifest with this digest, verified.

        :raises CorruptRecordError: if it is missing or damaged.
        """
        with self._lock:
            if digest in self._manifests:
                self._manifests.move_to_end(digest)
                return self._manifests[digest]
        if not is_digest(digest, self.algorithm):
            raise CorruptRecordError(f"{digest!r} is not a manifest digest of this store", key=digest)
        key = f"manifests/{digest[:2]}/{digest}"
        try:
            data = self.backend.read(key)
        except FileNotFoundError:
            raise CorruptRecordError(f"manifest {digest} is missing from the store", key=key) from None
        manifest = decode_manifest(data, digest, key)
        self._remember_manifest(digest, manifest)
        return manifest

    def _remember_manifest(self, digest: str, manifest: Manifest) -> None:
        with self._lock:
            self._manifests[digest] = manifest
            while len(self._manifests) > 64:
                self._manifests.popitem(last=False)

    def create_version(self, fields: dict[str, Any]) -> R.VersionRecord:
        """Allocate the next version number of ``fields['name']`` and create its record.

        The number is found by listing ``versions/<name>/``; the exclusive create makes sure
        two writers never get the same one: the loser moves on to the next number.
        """
        self.init()
        name = fields["name"]
        taken = [int(n) for n in self.backend.listdir(f"versions/{name}") if n.isdigit()]
        number = max(taken) + 1 if taken else 0
        for _ in range(MAX_ALLOCATION_TRIES):
            record = R.VersionRecord(number=number, algorithm=self.algorithm, **fields)
            if self.backend.create(f"versions/{name}/{number}", R.encode(record)):
                return record
            number += 1
        raise ConflictError(f"could not allocate a version number for {name!r}", key=f"versions/{name}")

    def read_version_record(self, name: str, number: int) -> R.VersionRecord:
        """Read a version record straight from the store (bypassing the index)."""
        key = f"versions/{name}/{number}"
        try:
            return R.decode(R.VersionRecord, self.backend.read(key), key)
        except FileNotFoundError:
            raise NotFoundError(f"{name}:v{number} does not exist", name=f"{name}:v{number}") from None

    def write_event(self, kind: str, data: dict[str, Any], run: str | None = None, user: str | None = None,
                    *, background: bool = False) -> R.Event:
        """Append one event to the store's log and to the local index.

        :param background: queue the event for the store's writer thread and return at once
            (run bookkeeping: see :mod:`plait.core.eventwriter`); otherwise write it now, after
            everything queued before it.
        """
        event = R.Event(id=new_ulid(), kind=kind, time=utcnow(), user=user or current_user(), run=run, data=data)
        if background:
            self._events.submit(self, event)
            return event
        return self.append_event(event)

    def append_event(self, event: R.Event) -> R.Event:
        """Write a fully formed event (its id must be new) and fold it into the local index.

        :raises ConflictError: if an event with that id already exists.
        """
        self._events.flush()
        self._write_event_file(event)
        self._index_events([event])
        return event

    def flush(self) -> None:
        """Wait until every event queued for the background writer is in the store.

        Runs queue their start, end and uses; a top-level run's end, any version logged and
        interpreter exit flush them, so call this only before handing the store to another
        process while a run is still going.

        :raises StoreError: if a queued event could not be written (it stays queued; flush again
            to retry).
        """
        self._events.flush()

    def _write_event_file(self, event: R.Event) -> None:
        self.init()
        if not self.backend.create(event.key, R.encode(event)):
            raise ConflictError(f"event {event.key} already exists", key=event.key)

    def _index_events(self, events: list[R.Event]) -> None:
        if self._catalog is not None:
            self._catalog.fold(events)

    # -- versions -------------------------------------------------------------------------------

    def resolve(self, spec: str | Spec) -> tuple[str, int]:
        """Return ``(name, number)`` for a spec, or raise listing what exists.

        :raises InvalidNameError: for a malformed spec.
        :raises NotFoundError: for an unknown name, version or alias.
        """
        parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
        catalog = self.catalog
        name = parsed.name
        if parsed.number is not None:
            row = catalog.version(name, parsed.number)
            if row is None:
                try:
                    catalog.add_version(self.read_version_record(name, parsed.number))
                    row = catalog.version(name, parsed.number)
                except NotFoundError:
                    row = None
            if row is None or row[12]:
                raise self._unknown(name, f"version v{parsed.number}")
            return name, parsed.number
        if parsed.alias == LATEST:
            number = catalog.latest_number(name)
            if number is None:
                raise self._unknown(name, "any version")
            return name, number
        number = catalog.alias_number(name, parsed.alias or "")
        if number is None:
            raise self._unknown(name, f"alias {parsed.alias!r}")
        return name, number

    def _unknown(self, name: str, what: str) -> NotFoundError:
        catalog = self.catalog
        numbers = [r[0] for r in catalog.query("SELECT number FROM versions WHERE name = ? AND deleted = 0 ORDER BY number", (name,))]
        if not numbers:
            names = catalog.names()
            listing = ", ".join(names[:20]) + (" …" if len(names) > 20 else "") if names else "none yet"
            return NotFoundError(f"no artifact named {name!r} in {self.url} (artifacts: {listing})", name=name, candidates=names)
        aliases = sorted({a for lst in catalog.aliases_of(name).values() for a in lst})
        listing = ", ".join(f"v{n}" for n in numbers[-10:]) + (", aliases: " + ", ".join(aliases) if aliases else "")
        return NotFoundError(f"{name!r} has no {what} (it has {listing})", name=name, candidates=[f"v{n}" for n in numbers] + aliases)

    def get(self, spec: str) -> ArtifactVersion:
        """Return the version a spec names: ``name``, ``name:v3``, ``name:latest``, ``name:<alias>``.

        :raises NotFoundError: listing what exists.
        """
        from plait.core.version import ArtifactVersion

        name, number = self.resolve(spec)
        return ArtifactVersion.from_row(self, self.catalog.version(name, number))

    def versions(self, name: str) -> list[ArtifactVersion]:
        """Return every live version of ``name``, oldest first.

        :raises NotFoundError: if there is no such artifact.
        """
        from plait.core.version import ArtifactVersion

        check_name(name)
        rows = self.catalog.query(f"SELECT {version_columns()} FROM versions WHERE name = ? AND deleted = 0 ORDER BY number", (name,))
        if not rows:
            raise self._unknown(name, "any version")
        return [ArtifactVersion.from_row(self, r) for r in rows]

    def artifacts(self, type: str | None = None) -> list[ArtifactVersion]:
        """Return the latest version of every artifact (of one ``type``), by name."""
        from plait.core.version import ArtifactVersion

        sql = (
            f"SELECT {version_columns('v.')} FROM versions v JOIN (SELECT name, MAX(number) AS n FROM versions "
            "WHERE deleted = 0 GROUP BY name) m ON v.name = m.name AND v.number = m.n"
        )
        params: list[Any] = []
        if type is not None:
            sql += " WHERE v.type = ?"
            params.append(type)
        return [ArtifactVersion.from_row(self, r) for r in self.catalog.query(sql + " ORDER BY v.name", params)]

    def find(self, digest: str) -> list[ArtifactVersion]:
        """Return the live versions whose manifest digest is ``digest``, oldest first."""
        from plait.core.version import ArtifactVersion

        return [ArtifactVersion.from_row(self, r) for r in self.catalog.by_digest(digest)]

    def set_alias(self, spec: str, alias: str, run: str | None = None) -> None:
        """Point ``alias`` at the version ``spec`` names, moving it from wherever it was."""
        check_alias(alias)
        name, number = self.resolve(spec)
        old = self.catalog.alias_number(name, alias)
        if old == number:
            return
        self.write_event(R.ALIAS_SET, {"name": name, "alias": alias, "number": number, "old": old}, run=run)

    def remove_alias(self, spec: str, alias: str, run: str | None = None) -> None:
        """Remove ``alias`` from the version ``spec`` names.

        :raises NotFoundError: if the alias is not on that version.
        """
        check_alias(alias)
        name, number = self.resolve(spec)
        if self.catalog.alias_number(name, alias) != number:
            raise NotFoundError(f"{name}:v{number} has no alias {alias!r}", name=f"{name}:{alias}")
        self.write_event(R.ALIAS_REMOVED, {"name": name, "alias": alias, "number": number}, run=run)

    def delete(self, spec: str, *, force: bool = False, run: str | None = None) -> None:
        """Delete a version (recorded as an event); its unique blobs become collectable by ``gc``.

        :param force: also drop the aliases pointing at it (otherwise they must be moved first).
        :raises StoreError: if aliases still point at it and ``force`` is not set.
        """
        name, number = self.resolve(spec)
        aliases = self.catalog.aliases_of(name, number).get(number, [])
        if aliases and not force:
            raise StoreError(
                f"{name}:v{number} still has aliases {', '.join(aliases)}; move them first or pass force=True (--force)"
            )
        for alias in aliases:
            self.write_event(R.ALIAS_REMOVED, {"name": name, "alias": alias, "number": number}, run=run)
        self.write_event(R.VERSION_DELETED, {"name": name, "number": number}, run=run)

    # -- higher-level operations (each in its own module) ---------------------------------------

    def log(self, obj: Any, name: str | None = None, type: str | None = None, *, aliases: Iterable[str] = (), **kwargs: Any) -> ArtifactVersion:
        """Log a path, bytes, an :class:`~plait.Artifact` or any object a plugin converts.

        Inside a run of this store the version is that run's output; outside, the process's
        implicit run produces it. See :meth:`plait.Run.log`.
        """
        from plait.core.run import run_for

        return run_for(self).log(obj, name=name, type=type, aliases=aliases, **kwargs)

    def use(self, obj: Any, **kwargs: Any) -> ArtifactVersion:
        """Record that the current run (or the process's implicit run) uses a version; return it."""
        from plait.core.run import run_for

        return run_for(self).use(obj, **kwargs)

    def runs(self, name: str | None = None, kind: str | None = None, *, parent: str | None = None, limit: int | None = None) -> list[Run]:
        """Return runs, newest first, filtered by name, kind or parent run id."""
        from plait.core.run import Run

        sql, params = "SELECT id FROM runs WHERE 1 = 1", []
        for column, value in (("name", name), ("kind", kind), ("parent", parent)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        sql += " ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [Run.load(self, r[0]) for r in self.catalog.query(sql, params)]

    def get_run(self, run_id: str) -> Run:
        """Return the run with this id (a unique prefix is enough).

        :raises NotFoundError: for an unknown id.
        """
        from plait.core.run import Run

        return Run.load(self, run_id)

    def lineage(self, spec: str, direction: str = "upstream", depth: int | None = None) -> LineageGraph:
        """Return the lineage graph of a version (``name:v3``) or a run (its id).

        See :func:`plait.lineage`.
        """
        from plait.core.lineage import lineage

        return lineage(self, spec, direction=direction, depth=depth)

    def gc(self, *, dry_run: bool = True, grace_seconds: float | None = None) -> Any:
        """Delete blobs and manifests no live version references. See :func:`plait.core.gc.gc`."""
        from plait.core.gc import gc

        return gc(self, dry_run=dry_run, grace_seconds=grace_seconds)

    def compact(self, *, before_days: int = 2) -> Any:
        """Pack the events of days older than ``before_days`` into segments. See :mod:`plait.core.compact`."""
        from plait.core.compact import compact

        return compact(self, before_days=before_days)

    def verify(self, spec: str | None = None) -> Any:
        """Check every blob of one version (or all) against its digest. See :mod:`plait.core.verify`."""
        from plait.core.verify import verify_store

        return verify_store(self, spec)


def _parse_config(data: bytes, url: str) -> dict[str, Any]:
    try:
        config = json.loads(data)
        assert isinstance(config, dict)
    except (ValueError, AssertionError):
        raise StoreError(f"{url}/plait.json is damaged; it should hold the store's format and hash algorithm") from None
    if config.get("format") != STORE_FORMAT:
        raise StoreError(f"{url} is a format {config.get('format')!r} store; this plait reads format {STORE_FORMAT}: upgrade plait")
    if config.get("algorithm") not in ALGORITHMS:
        raise StoreError(f"{url} hashes with {config.get('algorithm')!r}, which this plait does not know")
    return config


_memory_dirs: dict[str, str] = {}


def _memory_cache_dir(url: str) -> str:
    if url not in _memory_dirs:
        folder = tempfile.mkdtemp(prefix="plait-memory-")
        atexit.register(shutil.rmtree, folder, True)
        _memory_dirs[url] = folder
    return _memory_dirs[url]


def current_user() -> str:
    """Return who is acting: ``$PLAIT_USER``, else the OS login name."""
    return os.environ.get("PLAIT_USER") or _login_name()


@functools.cache
def _login_name() -> str:
    """The OS login name, looked up once per process (``getpwuid`` is a system call)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
