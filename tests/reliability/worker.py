"""A writer process for the reliability tests: ``python worker.py ACTION URL OPTIONS_JSON ARGS…``.

Actions:
  ``log NAME COUNT TAG``   log COUNT small versions of NAME (bytes unique to TAG and i)
  ``alias NAME ALIAS N``   point ALIAS at NAME:v0…v(N-1) in turn (starting at a random one)
  ``big NAME FOLDER [PHASE]``  log FOLDER as NAME (the crash test kills this one); with PHASE, print it
                           and stop there (see ``pause_at``) for the test to kill
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
    else:
        raise SystemExit(f"unknown action {action}")


def pause_at(phase: str, packed: bool) -> None:
    """Make the log stop for good in ``phase``, once it says so on stdout (the test then kills it).

    ``hashing``: before the first file is hashed; ``storing-N``: once N files' blobs are stored
    (into open packs, in a packed store); ``chunks``: once the first batch of a chunked file is
    stored (the first chunk appended, in a packed store); ``pack``: once the first pack is stored,
    before any index file (packed stores); ``index``: once the index file listing the packs is
    stored (packed stores); ``manifest``: once the manifest (format 1) or the first node of the
    tree (format 2: appended to the open tree pack) is stored; ``record``: once the version
    record exists, before its event; ``event``: once the event is written too.
    """
    import threading

    from plait.storage import packed as packed_module
    from plait.storage.blobs import BlobStore
    from plait.storage.packed import PackedBlobStore
    from plait.storage.packs import PackWriter
    from plait.store import publish, treebuild
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
    elif phase == "manifest":
        after(BaseStore, "put_manifest")
        after(BlobStore, "put_bytes", lambda self, data, kind="data": kind == "tree")
        after(PackedBlobStore, "put_bytes", lambda self, data, kind="data": kind == "tree")
    elif phase == "record":
        after(BaseStore, "create_version")
    elif phase == "event":
        after(BaseStore, "write_event", lambda self, kind, *a, **k: kind == "version.logged")
    else:
        raise SystemExit(f"unknown phase {phase}")


if __name__ == "__main__":
    main()
