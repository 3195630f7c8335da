"""Migrate a format-1 store to format 2 in place: its loose blobs copied into packs.

Three steps, each safe to interrupt and to run again:

1. every loose blob no index file lists yet is read (verified) and appended to a pack; the packs
   and their index files are stored as a log stores them (packs first, then the index file);
2. ``plait.json`` is rewritten with ``"format": 2`` and ``"migrated_from": 1`` (one atomic
   write): from then on, plait writes packs, and still reads loose blobs, forever;
3. nothing is deleted: a loose blob a pack also holds is a dead duplicate that ``plait gc``
   removes after its grace period, so a process that opened the store as format 1 before the
   switch still finds what it reads.

A crash during step 1 leaves packs a rerun does not copy again (their index file is there) or
packs no index file lists (gc's orphans); before step 2 the store is still plain format 1 for
every reader. Versions keep their manifests and digests: nothing that names a version changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from plait.base.parallel import parallel_map
from plait.errors import IntegrityError, StoreError
from plait.storage.blobs import BlobStore
from plait.storage.packs import KIND_DATA
from plait.store.base import CONFIG_KEY, STORE_FORMAT
from plait.store.base import BaseStore as Store

BLOBS_PREFIX = "blobs"

#: Loose blobs copied per index file (bounds what a crash makes a rerun copy again).
BATCH = 20_000


@dataclass
class MigrateReport:
    """What a migration did.

    :ivar from_format: the format the store had.
    :ivar blobs: loose blobs copied into packs by this run.
    :ivar bytes: their size.
    :ivar already: loose blobs a pack held already (an earlier, interrupted run).
    :ivar damaged: loose blobs left loose because they do not hash to their name (``plait verify``
        names the versions that need them).
    """

    from_format: int
    blobs: int = 0
    bytes: int = 0
    already: int = 0
    damaged: list[str] = field(default_factory=list)


def migrate(store: Store) -> MigrateReport:
    """Bring a format-1 store to format 2 (see the module); a format-2 store left by an
    interrupted migration has its remaining loose blobs packed.

    :raises StoreError: if the store does not exist, or cannot be written.
    """
    if not store.exists:
        raise StoreError(f"no plait store at {store.url}: nothing to migrate")
    store.backend.require_writable()
    config = dict(store.config)
    report = MigrateReport(from_format=int(config["format"]))
    if report.from_format == STORE_FORMAT and "migrated_from" not in config:
        return report  # born format 2: no loose blobs
    loose = BlobStore(store.backend, store.algorithm, store.cache_dir)
    packed = store.packed_blobs(loose=True)
    packed.index.refresh()
    todo = sorted(k.rsplit("/", 1)[-1] for k in store.backend.find(BLOBS_PREFIX))
    report.already = sum(1 for d in todo if d in packed.index)
    todo = [d for d in todo if d not in packed.index]
    step = 4 * loose.workers  # read a few at a time: chunks of large files are MiBs each
    for i in range(0, len(todo), step):
        batch = todo[i : i + step]
        for digest, data in zip(batch, parallel_map(lambda d: _read(loose, d), batch, loose.workers)):
            if data is None:
                report.damaged.append(digest)
                continue
            packed.rewrite(digest, data, KIND_DATA)
            report.blobs += 1
            report.bytes += len(data)
        if i // BATCH != (i + step) // BATCH:  # an index file every BATCH blobs: a rerun redoes at most that
            packed.commit()
    packed.commit()
    if report.from_format != STORE_FORMAT:
        config.update({"format": STORE_FORMAT, "migrated_from": report.from_format})
        store.backend.write(CONFIG_KEY, json.dumps(config, indent=2).encode())
    for other in {id(s): s for s in [store, *store.shared.stores()]}.values():  # every object of this URL here
        other.reload_config()
    return report


def _read(loose: BlobStore, digest: str) -> bytes | None:
    """Return a loose blob's verified bytes, or ``None`` if it is damaged or gone."""
    try:
        return loose.read(digest)
    except IntegrityError:
        return None
