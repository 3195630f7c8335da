"""gc marks: what a gc found unreferenced, and how a writer protects what it reuses from them.

A gc lists what it found unreferenced in one immutable record, ``gc/<ulid>``; a later gc
deletes what an old enough mark listed (see :mod:`plait.ops.gc`). A writer that reuses a stored
blob or manifest a mark lists touches it with :func:`protect` before it creates its version
record, so the sweep keeps it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plait.base.ids import ulid_time
from plait.formats.manifest import Manifest
from plait.formats.treeview import TreeManifest
from plait.store.shared import shared

if TYPE_CHECKING:
    from plait.store.base import BaseStore as Store

#: Where gc marks live in a store.
MARKS_PREFIX = "gc"
MARK_FORMAT = 1


@dataclass(frozen=True)
class Mark:
    """One gc's record of what it found unreferenced.

    :ivar key: its store key, ``gc/<ulid>``.
    :ivar time: when it was written (the store's clock where it reports one).
    :ivar blobs: the blob digests it lists.
    :ivar manifests: the manifest digests it lists.
    :ivar packs: the packs it condemned (format 2): each is deleted once no blob still needed
        lives only there.
    """

    key: str
    time: float
    blobs: frozenset[str]
    manifests: frozenset[str]
    packs: frozenset[str] = frozenset()


def read_marks(store: Store) -> list[Mark]:
    """Return the gc marks in the store, oldest first.

    :param store: the store to read.
    :returns: every readable mark; a damaged one is skipped (it protects and condemns nothing).
    """
    keys = sorted(store.backend.find(MARKS_PREFIX))
    cache = shared(store.url).marks  # marks are immutable: each is read once per process
    todo = [k for k in keys if k not in cache]
    for key, data in store.backend.read_many(todo).items():
        try:
            body = json.loads(zlib.decompress(data))
            parsed = (frozenset(body["blobs"]), frozenset(body["manifests"]), frozenset(body.get("packs", ())))
        except (zlib.error, ValueError, KeyError, TypeError):
            continue
        cache[key] = parsed
        while len(cache) > 32:
            cache.popitem(last=False)
    marks = []
    for key in keys:
        parsed = cache.get(key)
        if parsed is not None:
            stamp = store.backend.modified(key)
            if stamp is None:
                try:
                    stamp = ulid_time(key.rsplit("/", 1)[-1]).timestamp()
                except ValueError:
                    continue
            marks.append(Mark(key, stamp, *parsed))
    return marks


def protect(store: Store, manifest: Manifest | TreeManifest) -> list[str]:
    """Touch every blob and the manifest a log reuses that a gc has marked; return lost blobs.

    Called after a log stored its blobs and manifest and before it creates its version record.
    A touched blob is newer than the mark that condemned it, so no sweep deletes it; in a packed
    store the blob is written again into a new pack instead (see
    :meth:`plait.storage.packed.PackedBlobStore.protect`). A marked manifest a sweep already
    took is written again here.

    :param store: the store being logged to.
    :param manifest: the manifest about to be referenced by a new version record (a tree's
        nodes are blobs: each is checked like the files' blobs).
    :returns: digests of marked blobs that a sweep already deleted; the caller stores them again.
    """
    marks = read_marks(store)
    if not marks:
        return []
    marked_blobs = frozenset().union(*(m.blobs for m in marks))
    lost = store.blobs.protect(sorted(set(manifest.blobs()) & marked_blobs))
    if isinstance(manifest, Manifest) and any(manifest.digest in m.manifests for m in marks):
        key = f"manifests/{manifest.digest[:2]}/{manifest.digest}"
        try:
            store.backend.touch(key)
        except FileNotFoundError:
            store.put_manifest(manifest)
    return lost
