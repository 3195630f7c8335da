"""Distributed versions: workers send parts, one finish makes exactly one version of them.

See :mod:`plait.formats.distributed` for the records. Every record is created exclusively, so
this is as safe on S3 as on a local folder:

- a part's blobs and manifest are stored first, then its record; a worker killed before the
  record leaves garbage at most, and sending the part again is always allowed until the finish;
- ``finish`` refuses when there are no parts, then creates ``closing``, lists the parts, stores
  the merged manifest, creates ``finish`` naming the parts it took, and makes the version;
- a part whose worker finds ``closing`` waits for ``finish``: it is accepted if the finish took
  it, else removed and refused. A finish that finds ``finish`` returns that version (a retry).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.base.ids import new_ulid, utcnow
from plait.errors import ConflictError, CorruptRecordError, InvalidInputError, StoreError
from plait.formats import distributed as D
from plait.formats import records as R
from plait.formats.artifact import Artifact
from plait.formats.manifest import Entry
from plait.index.rows import VersionRow
from plait.store.publish import check_storable, own_folders, publish_manifest, store_content, store_manifest

if TYPE_CHECKING:
    from plait.store.base import BaseStore as Store

#: How long a part or a second finish waits for a finish that began elsewhere (seconds).
DEFAULT_WAIT = 60.0
_POLL = 0.05


@dataclass(frozen=True)
class Part:
    """A part as stored: its record and where it is.

    :ivar key: its store key.
    :ivar record: what it holds.
    """

    key: str
    record: D.PartRecord


@dataclass(frozen=True)
class Finished:
    """What a finish made.

    :ivar row: the version.
    :ivar created: whether this call made it (``False``: a finish before this one did).
    :ivar runs: the runs whose parts it holds, oldest part first.
    """

    row: VersionRow
    created: bool
    runs: list[str]


def upsert(store: Store, draft: Artifact, *, run: str | None, on_hashed: Callable[[], Any] | None = None,
           wait: float = DEFAULT_WAIT) -> Part:
    """Store a draft's files and send them as one part of its distributed version.

    Sending the same part again (a retried worker) is harmless: equal files merge into one.

    :param run: the run sending it.
    :param on_hashed: called once its blobs are stored, before any record.
    :param wait: how long to wait for a finish that began meanwhile to say whether it took the part.
    :raises InvalidInputError: for a draft without a ``distributed_id``.
    :raises ConflictError: if the distributed version is finished (or finishing without this part).
    """
    did = draft.distributed_id
    if did is None:
        raise InvalidInputError(f"the draft of {draft.name!r} has no distributed_id; give one "
                                "(plait.Artifact(name, distributed_id='eval-42')) or log it with plait.log()")
    check_storable(draft, run)
    _refuse_if_finished(store, draft.name, did)
    draft.exclude(own_folders(store))
    content = store_content(store, draft, on_hashed=on_hashed)
    part_id = new_ulid()
    record = R.build(D.PartRecord, f"the part of {draft.name!r} ({did})", id=part_id, name=draft.name, distributed_id=did,
                     type=draft.type, description=draft.description, metadata=draft.metadata, digest=content.digest,
                     size=content.size, file_count=content.file_count, run=run, time=utcnow())
    key = D.part_key(draft.name, did, part_id)
    _write_part(store, key, record)
    if store.backend.exists(D.closing_key(draft.name, did)):  # a finish began: did it see this part?
        decision = _await_finish(store, draft.name, did, wait)
        if part_id not in decision.parts:
            store.backend.delete(key)
            raise _finished_error(store, draft.name, did, decision)
    return Part(key, record)


def _write_part(store: Store, key: str, record: D.PartRecord) -> None:
    store.blobs.commit()  # packs, then the index file listing them, then the part naming them
    store.blobs.end()
    if not store.backend.create(key, R.encode(record)):
        raise ConflictError(f"part {key} already exists", key=key)


def finish(store: Store, name: str, distributed_id: str, *, run: str | None, description: str | None = None,
           metadata: Mapping[str, Any] | None = None, wait: float = DEFAULT_WAIT,
           on_start: Callable[[], Any] | None = None) -> Finished:
    """Make the one version of a distributed version from every part sent so far.

    Files apply in part order: a later part's file at a path replaces an earlier one's. Type,
    description and metadata come from the parts (the later wins), then from the arguments.
    Finishing again returns the same version.

    :param run: the finishing run (the version's creator; every sending run is a producer too).
    :param wait: how long to wait for a finish another process began before taking it over.
    :param on_start: called before the first record is written (once the finish has parts).
    :raises InvalidInputError: if no part was sent (nothing is written).
    """
    D.check_distributed_id(distributed_id)
    decision = _read_finish(store, name, distributed_id)
    if decision is None:
        closing = D.closing_key(name, distributed_id)
        if store.backend.exists(closing):
            decision = _await_finish(store, name, distributed_id, wait, take_over=True)
        if decision is None:
            if not parts(store, name, distributed_id):
                raise InvalidInputError(f"no parts of {name!r} with distributed_id {distributed_id!r} were sent; "
                                        "send them with plait.upsert() first")
            if on_start is not None:
                on_start()
            store.backend.create(closing, R.encode(R.build(D.ClosingRecord, "a closing record", run=run, time=utcnow())))
            decision = _decide(store, name, distributed_id, run)
    found = {p.record.id: p.record for p in parts(store, name, distributed_id)}
    taken = [found[i] for i in decision.parts if i in found]
    draft = _draft(name, taken, description, metadata)
    if on_start is not None:
        on_start()
    row, created = publish_manifest(store, draft, store.manifest(decision.digest), created_by=run)
    return Finished(row, created, decision.runs)


def parts(store: Store, name: str, distributed_id: str) -> list[Part]:
    """Return the readable parts sent so far, in the order they apply (a damaged one is skipped)."""
    prefix = f"{D.folder(name, distributed_id)}/parts"
    out = []
    for key, data in sorted(store.backend.read_many(sorted(store.backend.find(prefix))).items()):
        try:
            record = R.decode(D.PartRecord, data, key)
        except CorruptRecordError:
            continue
        if key.rsplit("/", 1)[-1] == record.id and record.name == name and record.distributed_id == distributed_id:
            out.append(Part(key, record))
    return out


def pending_manifests(store: Store) -> set[str]:
    """Return the manifests of the parts of every distributed version not finished yet (gc keeps them)."""
    keys = store.backend.find(D.PREFIX)
    finished = {k.rsplit("/", 1)[0] for k in keys if k.endswith("/finish")}
    pending = [k for k in keys if "/parts/" in k and k.rsplit("/parts/", 1)[0] not in finished]
    out = set()
    for key, data in store.backend.read_many(pending).items():
        try:
            out.add(R.decode(D.PartRecord, data, key).digest)
        except CorruptRecordError:
            continue
    return out


def _decide(store: Store, name: str, distributed_id: str, run: str | None) -> D.FinishRecord:
    """List the parts (after the close), store their merged manifest and create the finish record."""
    found = parts(store, name, distributed_id)
    entries: dict[str, Entry] = {}
    for part in found:
        for entry in store.manifest(part.record.digest).entries:
            entries[entry.path] = entry
    manifest = store_manifest(store, entries.values())
    runs = list(dict.fromkeys(p.record.run for p in found if p.record.run))
    record = R.build(D.FinishRecord, f"the finish of {name!r} ({distributed_id})", parts=[p.record.id for p in found],
                     runs=runs, digest=manifest.digest, run=run, time=utcnow())
    store.blobs.commit()  # a tree's nodes are packed: listed by an index file before the record names them
    if store.backend.create(D.finish_key(name, distributed_id), R.encode(record)):
        return record
    other = _read_finish(store, name, distributed_id)  # another finisher decided first: its decision holds
    assert other is not None
    return other


def _draft(name: str, taken: list[D.PartRecord], description: str | None, metadata: Mapping[str, Any] | None) -> Artifact:
    merged: dict[str, Any] = {}
    for record in taken:
        merged.update(record.metadata)
    merged.update(metadata or {})
    texts = [r.description for r in taken if r.description]
    kind = taken[-1].type if taken else "dataset"
    return Artifact(name, type=kind, description=description if description is not None else (texts[-1] if texts else ""),
                    metadata=merged)


def _read_finish(store: Store, name: str, distributed_id: str) -> D.FinishRecord | None:
    key = D.finish_key(name, distributed_id)
    try:
        return R.decode(D.FinishRecord, store.backend.read(key), key)
    except FileNotFoundError:
        return None


def _await_finish(store: Store, name: str, distributed_id: str, wait: float, *, take_over: bool = False) -> D.FinishRecord | None:
    """Wait for the finish record a finish that began elsewhere writes; ``None`` if it never came and
    ``take_over`` (the caller finishes instead).

    :raises StoreError: if it never came and not ``take_over``.
    """
    deadline = time.monotonic() + wait
    while True:
        decision = _read_finish(store, name, distributed_id)
        if decision is not None:
            return decision
        if time.monotonic() >= deadline:
            if take_over:
                return None
            raise StoreError(f"a finish of {name!r} ({distributed_id}) began but has not decided after {wait:g}s; "
                             f"call plait.finish({name!r}, distributed_id={distributed_id!r}) to complete it, then send "
                             "this part to a new distributed_id if it is not in the version")
        time.sleep(_POLL)


def _refuse_if_finished(store: Store, name: str, distributed_id: str) -> None:
    decision = _read_finish(store, name, distributed_id)
    if decision is not None:
        raise _finished_error(store, name, distributed_id, decision)


def _finished_error(store: Store, name: str, distributed_id: str, decision: D.FinishRecord) -> ConflictError:
    from plait.index import versions as V

    rows = V.by_content(store.catalog, decision.digest) if store.exists else []
    made = next((f"{r.name}:v{r.number}" for r in rows if r.name == name), f"a version of {name!r}")
    return ConflictError(f"{name!r} with distributed_id {distributed_id!r} was finished at {decision.time} as {made}; "
                         "this part is not in it: send it under a new distributed_id", key=D.finish_key(name, distributed_id))
