"""sync: copy versions, runs and their history from one store to another, sending only the delta.

A version is known across stores by its name and manifest digest, never by its number: the
destination allocates its own numbers (by exclusive create, like any log) and records the
source's in ``origin``. The order of writes keeps the destination consistent at every moment —
blobs, then the manifest, then the version record, then events — so an interrupted sync leaves
unreferenced blobs at most and simply resumes.

Events are imported as new events (fresh ULIDs, so every reader's incremental index sync sees
them) that keep the original time, user and run, and name the event they copy in
``data["origin"]``; an event already imported, or one that came from the destination in the first
place, is not sent again. An alias that points at different content in the two stores is a
conflict: reported and left alone, unless ``aliases="overwrite"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plait.base.ids import new_ulid
from plait.base.parallel import parallel_map
from plait.errors import StoreError
from plait.formats import records as R
from plait.formats.treeview import TreeManifest
from plait.index import events as E
from plait.index import producers as P
from plait.index import runs as RQ
from plait.index import versions as V
from plait.storage.blobs import blob_key
from plait.store.base import BaseStore as Store
from plait.store.base import manifest_key
from plait.tracking.lineage import lineage as lineage_of

ALIAS_POLICIES = ("report", "overwrite")


@dataclass
class SyncReport:
    """What :func:`sync` did.

    :ivar versions: ``(source spec, destination spec)`` of versions created in the destination.
    :ivar existing: versions the destination already had.
    :ivar blobs: blobs sent.
    :ivar bytes: bytes of blobs sent.
    :ivar manifests: manifests sent.
    :ivar events: events written to the destination.
    :ivar runs: runs whose start was copied.
    :ivar conflicts: aliases left alone because they point at different content in each store.
    """

    versions: list[tuple[str, str]] = field(default_factory=list)
    existing: int = 0
    blobs: int = 0
    bytes: int = 0
    manifests: int = 0
    events: int = 0
    runs: int = 0
    conflicts: list[str] = field(default_factory=list)

    @property
    def sent_nothing(self) -> bool:
        """Whether the destination was already up to date."""
        return not (self.versions or self.blobs or self.manifests or self.events)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "versions": [{"source": s, "destination": d} for s, d in self.versions], "existing": self.existing,
            "blobs": self.blobs, "bytes": self.bytes, "manifests": self.manifests, "events": self.events,
            "runs": self.runs, "conflicts": self.conflicts,
        }


def sync(src: Store | str, dst: Store | str, specs: list[str] | None = None, *, lineage: bool = True,
         aliases: str = "report") -> SyncReport:
    """Copy what ``dst`` lacks from ``src``: versions (with their blobs), runs, uses and history.

    :param src: the store to read (a :class:`Store` or URL).
    :param dst: the store to write (created with the source's hash algorithm if new).
    :param specs: versions to copy (``name``, ``name:v3``, ``name:alias``); ``None`` for all.
    :param lineage: with ``specs``, also copy every version and run upstream of them.
    :param aliases: ``report`` (conflicting aliases are listed and left alone) or ``overwrite``.
    :returns: what was sent.
    :raises StoreError: if the stores hash differently, or the policy is unknown.
    :raises NotFoundError: for an unknown spec in the source.
    """
    source = src if isinstance(src, Store) else Store(src)
    target = dst if isinstance(dst, Store) else Store(dst)
    if aliases not in ALIAS_POLICIES:
        raise StoreError(f"aliases must be one of {', '.join(ALIAS_POLICIES)}, not {aliases!r}")
    if not target.exists:
        target.requested_hash = source.algorithm
        target.requested_format = source.format
    target.init()
    if target.format != source.format:
        raise StoreError(
            f"{source.url} is a format {source.format} store but {target.url} format {target.format}; their "
            "version digests differ, so plait will not sync between them (sync into a new destination, "
            "which takes the source's format)"
        )
    if target.algorithm != source.algorithm:
        raise StoreError(
            f"{source.url} hashes with {source.algorithm} but {target.url} with {target.algorithm}; "
            "digests cannot be compared, so plait will not sync between them (create the destination "
            f"with `plait init URL --hash {source.algorithm}`)"
        )
    return _Sync(source, target, aliases).run(specs, lineage)


class _Sync:
    def __init__(self, src: Store, dst: Store, aliases: str) -> None:
        self.src, self.dst, self.aliases = src, dst, aliases
        self.report = SyncReport()
        self.numbers: dict[tuple[str, int], int] = {}  # source (name, number) -> destination number
        self.src_id = src.id or ""
        self.imported = E.imported(dst.catalog)
        self.local_events = E.ids(dst.catalog)
        self._present: dict[str, set[str]] = {}

    # -- selection ------------------------------------------------------------------------------

    def run(self, specs: list[str] | None, lineage: bool) -> SyncReport:
        versions, runs = self._select(specs, lineage)
        src_events = self._source_events(versions, runs)
        for event in src_events:
            if event.kind == R.RUN_STARTED:
                self._copy_run_start(event)
        for name, number in versions:
            self._copy_version(name, number, src_events)
        for event in src_events:
            if event.kind in (R.VERSION_USED, R.VERSION_PRODUCED, R.VERSION_UPDATED, R.VERSION_DELETED):
                self._copy_translated(event)
        self._copy_aliases(versions, src_events)
        for event in src_events:
            if event.kind == R.RUN_FINISHED:
                self._copy_run_finish(event)
        return self.report

    def _select(self, specs: list[str] | None, lineage: bool) -> tuple[list[tuple[str, int]], set[str]]:
        catalog = self.src.catalog
        if specs is None:
            return V.keys(catalog, live_only=True), RQ.ids(catalog)
        keys: set[tuple[str, int]] = set()
        runs: set[str] = set()
        for spec in specs:
            if lineage:
                graph = lineage_of(self.src, spec, direction="upstream", producers="all")
                keys |= {(v.name, v.number) for v in graph.versions.values()}
                runs |= set(graph.runs)
            else:
                name, number = self.src.resolve(spec)
                keys.add((name, number))
                runs.update(P.runs_of(catalog, name, number))
        return sorted(keys), runs

    def _source_events(self, versions: list[tuple[str, int]], runs: set[str]) -> list[R.Event]:
        wanted = set(versions)
        names = sorted({n for n, _ in versions})
        out = []
        for row in E.every(self.src.catalog):
            kind, body = row.kind, row.data
            if kind in (R.RUN_STARTED, R.RUN_FINISHED):
                keep = body.get("id") in runs
            elif kind in (R.ALIAS_SET, R.ALIAS_REMOVED):
                keep = body.get("name") in names and (body["name"], body["number"]) in wanted
            elif kind in (R.VERSION_USED, R.VERSION_PRODUCED):
                keep = row.run in runs and (body["name"], body["number"]) in wanted
            else:
                keep = (body.get("name"), body.get("number")) in wanted
            if keep:
                out.append(R.Event(id=row.id, kind=kind, time=row.time, user=row.user, run=row.run, data=body))
        return out

    # -- copying --------------------------------------------------------------------------------

    def _root(self, event: R.Event) -> tuple[str, str]:
        origin = event.data.get("origin") if event.kind != R.VERSION_LOGGED else None
        if isinstance(origin, dict) and origin.get("event"):
            return str(origin.get("store")), str(origin["event"])
        return self.src_id, event.id

    def _already_there(self, event: R.Event) -> bool:
        store, root = self._root(event)
        return store == self.dst.id or root in self.imported or root in self.local_events

    def _import(self, event: R.Event, data: dict[str, Any]) -> None:
        store, root = self._root(event)
        if event.kind != R.VERSION_LOGGED:
            data = {**data, "origin": {"store": store, "event": root}}
        self.dst.append_event(R.Event(id=new_ulid(), kind=event.kind, time=event.time, user=event.user, run=event.run, data=data))
        self.imported.add(root)
        self.report.events += 1

    def _copy_run_start(self, event: R.Event) -> None:
        row = RQ.run(self.dst.catalog, event.data["id"])
        if row is not None and row.body:
            return
        self._import(event, event.data)
        self.report.runs += 1

    def _copy_run_finish(self, event: R.Event) -> None:
        row = RQ.run(self.dst.catalog, event.data["id"])
        if row is not None and row.status != "running":
            return
        self._import(event, event.data)

    def _copy_version(self, name: str, number: int, src_events: list[R.Event]) -> None:
        row = V.version(self.src.catalog, name, number)
        assert row is not None
        digest = row.digest
        found = self._find_in_dst(name, number, digest)
        if found is not None:
            self.numbers[(name, number)] = found
            self.report.existing += 1
            return
        manifest = self.src.manifest(digest)
        present = self._blobs_of_live_versions(name)
        needed = {d: size for d, size in manifest.blobs().items() if d not in present}
        if isinstance(manifest, TreeManifest):
            # nodes after the files' blobs, children before parents: a node in the destination
            # always has everything below it, even if this sync is interrupted
            nodes = [d for d, _ in manifest.nodes() if d in needed]
            tree = set(nodes)
            self._send_blobs({d: s for d, s in needed.items() if d not in tree})
            for node in nodes:
                self._send_blobs({node: needed[node]})
        else:
            self._send_blobs(needed)
            key = manifest_key(digest)
            if not self.dst.backend.exists(key):
                self.dst.backend.write(key, self.src.backend.read(key))
                self.report.manifests += 1
        record = self.src.read_version_record(name, number)
        fields = record.model_dump(mode="json", exclude={"number", "algorithm", "format", "origin"})
        fields["origin"] = record.origin or {"store": self.src_id, "number": number}
        created = self.dst.create_version(fields)
        logged = next((e for e in src_events if e.kind == R.VERSION_LOGGED and e.data.get("name") == name
                       and e.data.get("number") == number), None)
        event = logged or R.Event(id=new_ulid(), kind=R.VERSION_LOGGED, time=record.created_at, run=record.created_by,
                                  data=record.model_dump(mode="json"))
        self._import(event, created.model_dump(mode="json"))
        self.numbers[(name, number)] = created.number
        self._blobs_of_live_versions(name).update(manifest.blobs())
        self.report.versions.append((f"{name}:v{number}", f"{name}:v{created.number}"))

    def _blobs_of_live_versions(self, name: str) -> set[str]:
        """Return the blobs of the destination's live versions of ``name``: all there, by the
        order every writer keeps (blobs before the version), so none needs a request to check."""
        if name not in self._present:
            present: set[str] = set()
            for digest in V.live_digests(self.dst.catalog, name):
                present.update(self.dst.manifest(digest).blobs())
            self._present[name] = present
        return self._present[name]

    def _find_in_dst(self, name: str, number: int, digest: str) -> int | None:
        catalog = self.dst.catalog
        rows = V.with_digest(catalog, name, digest)
        for row in rows:
            o = row.origin or {}
            if o.get("store") == self.src_id and o.get("number") == number:
                return row.number
        if rows:
            return rows[0].number
        # a record written by an interrupted sync, whose event never made it: adopt it
        known = V.numbers(catalog, name)
        for text in self.dst.backend.listdir(f"versions/{name}"):
            if text.isdigit() and int(text) not in known:
                record = self.dst.read_version_record(name, int(text))
                if record.digest == digest:
                    catalog.add_version(record)
                    return record.number
        return None

    def _send_blobs(self, blobs: dict[str, int]) -> None:
        missing = self.dst.blobs.missing(blobs)
        if not missing:
            return
        self.dst.progress.start("sending", sum(blobs[d] for d in missing))
        try:
            if self.dst.format == 1 and self.src.format == 1:
                parallel_map(lambda d: self._send_loose(d, blobs[d]), missing, max(self.src.blobs.workers, self.dst.blobs.workers))
            else:  # into packs at the destination (never a source pack wholesale: it may hold most of it already)
                for digest, data in self.src.blobs.read_many(missing):  # verified: never spread damage
                    self.dst.blobs.put_verified(digest, data, self.src.blobs.kind_of(digest))
                    self.dst.progress.advance(blobs[digest])
        finally:
            self.dst.progress.finish()
        self.report.blobs += len(missing)
        self.report.bytes += sum(blobs[d] for d in missing)

    def _send_loose(self, digest: str, size: int) -> None:
        key = blob_key(digest)
        if self.src.backend.is_local and self.dst.backend.is_local and self.src.blobs.verify(digest):
            self.dst.backend.write_file(key, self.src.backend.local_path(key))
        else:
            self.dst.backend.write(key, self.src.blobs.read(digest))  # read() verifies: never spread damage
        self.dst.progress.advance(size)

    def _copy_translated(self, event: R.Event) -> None:
        key = (event.data["name"], event.data["number"])
        if key not in self.numbers or self._already_there(event):
            return
        data = {**event.data, "number": self.numbers[key]}
        if event.kind == R.VERSION_USED:
            if event.run is not None and RQ.used(self.dst.catalog, event.run, key[0], data["number"]):
                return
        if event.kind == R.VERSION_PRODUCED and event.run in P.runs_of(self.dst.catalog, key[0], data["number"]):
            return
        self._import(event, data)

    def _copy_aliases(self, versions: list[tuple[str, int]], src_events: list[R.Event]) -> None:
        by_alias: dict[tuple[str, str], list[R.Event]] = {}
        for event in src_events:
            if event.kind in (R.ALIAS_SET, R.ALIAS_REMOVED):
                by_alias.setdefault((event.data["name"], event.data["alias"]), []).append(event)
        for (name, alias), events in sorted(by_alias.items()):
            src_now = V.alias_number(self.src.catalog, name, alias)
            if src_now is not None and (name, src_now) not in self.numbers:
                continue  # the alias points at a version this sync does not carry
            wanted = self.numbers.get((name, src_now)) if src_now is not None else None
            dst_now = V.alias_number(self.dst.catalog, name, alias)
            todo = [e for e in events if not self._already_there(e) and (e.data["name"], e.data["number"]) in self.numbers]
            if dst_now is not None and dst_now != wanted and todo:
                if self.aliases == "report":
                    self.report.conflicts.append(
                        f"{name}:{alias} is {name}:v{dst_now} in {self.dst.url} but {name}:v{src_now} "
                        f"(here {name}:v{wanted}) in {self.src.url}; left as it is (use --aliases overwrite)")
                    continue
            for event in todo:
                number = self.numbers[(event.data["name"], event.data["number"])]
                old = event.data.get("old")
                data = {**event.data, "number": number}
                if event.kind == R.ALIAS_SET:
                    data["old"] = self.numbers.get((name, old)) if old is not None else None
                self._import(event, data)
            if self.aliases == "overwrite" and wanted is not None and V.alias_number(self.dst.catalog, name, alias) != wanted:
                self.dst.write_event(R.ALIAS_SET, {"name": name, "alias": alias, "number": wanted,
                                                   "old": V.alias_number(self.dst.catalog, name, alias)})
                self.report.events += 1
