"""A writer process for the reliability tests: ``python worker.py ACTION URL OPTIONS_JSON ARGS…``.

Actions:
  ``log NAME COUNT TAG``   log COUNT small versions of NAME (bytes unique to TAG and i)
  ``alias NAME ALIAS N``   point ALIAS at NAME:v0…v(N-1) in turn (starting at a random one)
  ``big NAME FOLDER [PHASE]``  log FOLDER as NAME (the crash test kills this one); with PHASE, print it
                           and stop there (see ``pause_at``) for the test to kill
  ``gc PHASE``             run a gc with no grace period, stopping in PHASE (see ``pause_in_gc``)
  ``migrate PHASE``        migrate a format-1 store to format 2, stopping in PHASE (see ``pause_in_migrate``)
Every action waits for the file named by $PLAIT_TEST_GO (if set) before starting, so that all
writers start together.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time


def main() -> None:
    action, url, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) or None
    go = os.environ.get("PLAIT_TEST_GO")
    while go and not os.path.exists(go):
        time.sleep(0.005)
    import plait

    store = plait.Store(url, storage_options=options)
    if action == "log":
        name, count, tag = sys.argv[4], int(sys.argv[5]), sys.argv[6]
        for i in range(count):
            store.log(f"{tag} item {i}".encode(), name=name)
    elif action == "alias":
        name, alias, n = sys.argv[4], sys.argv[5], int(sys.argv[6])
        start = random.randrange(n)
        for i in range(n):
            store.set_alias(f"{name}:v{(start + i) % n}", alias)
    elif action == "big":
        name, folder = sys.argv[4], sys.argv[5]
        if len(sys.argv) > 6:
            pause_at(sys.argv[6], packed=store.format == 2)
        print("started", flush=True)
        store.log(folder, name=name)
        print("done", flush=True)
    elif action == "gc":
        pause_in_gc(sys.argv[4])
        print("started", flush=True)
        store.gc(dry_run=False, grace_seconds=0)
        print("done", flush=True)
    elif action == "migrate":
        pause_in_migrate(sys.argv[4])
        print("started", flush=True)
        store.migrate()
        print("done", flush=True)
    else:
        raise SystemExit(f"unknown action {action}")


def _stop_after(owner, method: str, phase: str, when=lambda result: True) -> None:
    """Make ``owner.method`` print ``phase`` and wait forever (to be killed) after a call whose
    result ``when`` accepts."""
    import threading

    original = getattr(owner, method)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if when(result):
            print(phase, flush=True)
            threading.Event().wait()
        return result

    setattr(owner, method, wrapper)


def pause_in_gc(phase: str) -> None:
    """Make a packed store's gc stop for good in ``phase``: ``repack-pack`` once the first new
    pack of a repack is stored (no index lists it); ``repack`` once the repack's index file is
    stored; ``compact`` once the compacted index without the packs to delete is stored, before
    any pack is deleted; ``delete`` once the packs are deleted, before the superseded index
    files are."""
    from plait.ops import gc, packgc
    from plait.storage.packs import PackWriter

    if phase == "repack-pack":
        _stop_after(PackWriter, "seal", phase, lambda sealed: sealed is not None)
    elif phase == "repack":
        _stop_after(gc, "repack", phase)
    elif phase == "compact":
        _stop_after(packgc, "compact_index", phase)
    elif phase == "delete":
        _stop_after(gc, "delete_packs", phase)
    else:
        raise SystemExit(f"unknown phase {phase}")


def pause_in_migrate(phase: str) -> None:
    """Make a migration stop for good in ``phase``: ``pack`` once its first pack is stored;
    ``index`` once its first index file is stored (blobs are left to pack: the batch is made
    small); ``config`` once ``plait.json`` says format 2, before the process reads it again."""
    from plait.ops import migrate
    from plait.storage.packed import PackedBlobStore
    from plait.storage.packs import PackWriter
    from plait.store.base import BaseStore

    migrate.BATCH = 8
    if phase == "pack":
        _stop_after(PackWriter, "seal", phase, lambda sealed: sealed is not None)
    elif phase == "index":
        _stop_after(PackedBlobStore, "commit", phase, lambda name: name is not None)
    elif phase == "config":
        _stop_after(BaseStore, "reload_config", phase)
    else:
        raise SystemExit(f"unknown phase {phase}")


def pause_at(phase: str, packed: bool) -> None:
    """Make the log stop for good in ``phase``, once it says so on stdout (the test then kills it).

    ``hashing``: before the first file is hashed; ``storing-N``: once N files' blobs are stored
    (into open packs, in a packed store); ``chunks``: once the first batch of a chunked file is
    stored (the first chunk appended, in a packed store); ``pack``: once the first pack is stored,
    before any index file (packed stores); ``index``: once the index file listing the packs is
    stored (packed stores); ``checkpoint``: once a step of a long log has sealed its packs into
    the local index, before any index file (packed stores); ``merged-index``: while a long log's
    index file is half written to its temporary file (packed stores); ``manifest``: once the
    manifest (format 1) or the first node of the tree (format 2: appended to the open tree pack)
    is stored; ``record``: once the version record exists, before its event; ``event``: once the
    event is written too.
    """
    import threading

    from plait.storage import packed as packed_module
    from plait.storage.blobs import BlobStore
    from plait.storage.packed import PackedBlobStore
    from plait.storage.packs import PackWriter
    from plait.store import publish, treebuild, treestream
    from plait.store.base import BaseStore

    calls = {"n": 0}
    lock = threading.Lock()

    def stop() -> None:
        print(phase, flush=True)
        threading.Event().wait()  # forever: the test kills the process here

    def after(owner, method: str, when=lambda *a, **k: True) -> None:
        original = getattr(owner, method)

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            if when(*args, **kwargs):
                stop()
            return result

        setattr(owner, method, wrapper)

    if phase == "hashing":
        hash_file, read_small = publish.digest_file, packed_module.read_small
        publish.digest_file = treebuild.digest_file = lambda *a, **k: (stop(), hash_file(*a, **k))[1]
        packed_module.read_small = lambda *a, **k: (stop(), read_small(*a, **k))[1]  # small files of a packed store
    elif phase.startswith("storing-"):
        wanted = int(phase.split("-")[1])

        def nth(*args, **kwargs) -> bool:
            with lock:
                calls["n"] += 1
                return calls["n"] == wanted

        if packed:  # small files are read, hashed and appended in one pass: count blobs appended
            after(PackedBlobStore, "_append", nth)
        else:
            after(BlobStore, "put_file", nth)
    elif phase == "chunks" and packed:
        after(PackWriter, "add", lambda self, digest, data: len(data) >= 1 << 20)
    elif phase == "chunks":
        after(BlobStore, "_flush", lambda self, batch: True)
    elif phase == "pack":
        after(PackWriter, "seal")
    elif phase == "index":
        after(PackedBlobStore, "commit", lambda self: True)
    elif phase == "checkpoint":
        treestream.COMMIT_FILES = 1  # a step after every batch of files
        after(PackedBlobStore, "checkpoint")
    elif phase == "merged-index":
        from plait.storage import packindex

        treestream.COMMIT_FILES = 1
        merged_ranges = packindex._merged_ranges

        def stopping_after_the_first_range(*args, **kwargs):
            pack_ids, most, ranges = merged_ranges(*args, **kwargs)

            def written_one_by_one():
                for i, columns in enumerate(ranges):
                    if i == 1:  # the first range is in the temporary file, the rest is not
                        stop()
                    yield columns

            return pack_ids, most, written_one_by_one()

        packindex._merged_ranges = stopping_after_the_first_range
    elif phase == "manifest":
        after(BaseStore, "put_manifest")
        after(BlobStore, "put_bytes", lambda self, data, kind="data": kind == "tree")
        after(PackedBlobStore, "put_bytes", lambda self, data, kind="data": kind == "tree")
    elif phase == "record":
        after(BaseStore, "create_or_find_version")
    elif phase == "event":
        after(BaseStore, "write_event", lambda self, kind, *a, **k: kind == "version.logged")
    else:
        raise SystemExit(f"unknown phase {phase}")


if __name__ == "__main__":
    main()
