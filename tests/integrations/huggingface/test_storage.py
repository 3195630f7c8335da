"""A version that changes a few rows of a large dataset stores far fewer bytes than the whole, and
a dataset goes straight into the store: no local copy is written and read back."""

from __future__ import annotations

import os
import random

import datasets

import plait
from plait.integrations.huggingface import track

ROWS = 200_000


def blob_bytes(store_root: str) -> int:
    total = 0
    for top in ("blobs", "packs"):  # format 1, format 2
        for folder, _, files in os.walk(os.path.join(store_root, top)):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def test_changing_a_few_rows_stores_a_few_chunks(file_store):
    rng = random.Random(7)
    texts = [f"{rng.getrandbits(rng.randint(240, 560)):x}" for _ in range(ROWS)]  # ~100 characters each
    ids = list(range(ROWS))
    with plait.run("prep", store=file_store):
        track(datasets.Dataset.from_dict({"id": ids, "text": texts}), "corpus")
        whole = blob_bytes(file_store.url)
        for i in (10, 90_000, 150_000):
            texts[i] = texts[i].upper() + " edited"
        track(datasets.Dataset.from_dict({"id": ids, "text": texts}), "corpus")
    added = blob_bytes(file_store.url) - whole
    v0, v1 = file_store.versions("corpus")
    assert v0.digest != v1.digest and v0.size > 20_000_000
    shard = next(e for e in v1.files() if e.path.endswith(".arrow"))
    assert shard.chunks and len(shard.chunks) > 10  # cut into content-defined chunks
    assert whole >= v0.size and added < v0.size * 0.25, f"{added} new bytes for a {v0.size}-byte dataset"


def test_a_tracked_dataset_is_written_into_the_store_once_as_the_files_logged_from_disk_would_be(file_store, tmp_path):
    from plait.integrations.huggingface import serialize

    rng = random.Random(8)
    ds = datasets.Dataset.from_dict({"id": list(range(120_000)), "text": [f"{rng.getrandbits(400):x}" for _ in range(120_000)]})
    with plait.run("prep", store=file_store):
        track(ds, "corpus")
    tracked = file_store.get("corpus:latest")
    assert blob_bytes(file_store.url) < tracked.size * 1.01  # each byte stored once
    assert not os.path.exists(os.path.join(file_store.cache_dir, "huggingface-staging"))  # no local copy
    serialize.write(ds, serialize.in_folder(str(tmp_path / "files")))  # the same layout, on disk
    from_disk = file_store.log(plait.Artifact("corpus-files").add_dir(tmp_path / "files"))
    assert from_disk.digest == tracked.digest
    assert any(e.chunks for e in tracked.files())  # a shard large enough to be cut
