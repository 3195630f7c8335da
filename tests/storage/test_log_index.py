"""A log adds one index file to the store, however many files it holds.

A long log seals what it stored every so many files into a local index (compact columns, not
an object per blob) and lists it all in one index file when its version is made: later lookups
look in one file, not one per step. Until then only the process that stored the packs knows
them, and nothing else may rely on them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import plait
from plait import Artifact
from plait.storage import packindex
from plait.storage.packs import PackWriter
from plait.store import treestream


def _folder(root: Path, folders: int, files: int, same: bytes) -> Path:
    """Folders of small files, each unique except ``same``, which the first and the last folder hold."""
    for f in range(folders):
        sub = root / f"d{f:02d}"
        sub.mkdir(parents=True)
        for i in range(files):
            (sub / f"f{i:03d}.bin").write_bytes(f"folder {f} file {i}".encode())
    (root / "d00" / "same.bin").write_bytes(same)
    (root / f"d{folders - 1:02d}" / "same.bin").write_bytes(same)
    return root


def _index_files(store: plait.Store) -> set[str]:
    return set(store.backend.find("index"))


def _fresh(store: plait.Store) -> plait.Store:
    """Open the store anew: it knows only what is stored."""
    return plait.Store(store.url, storage_options=store.storage_options or None)


def _copies(store: plait.Store, digest: str) -> int:
    """How many stored copies of a blob the store's index lists."""
    return len(_fresh(store).blobs.index.locate_all(digest))


def _contents(version) -> dict[str, bytes]:
    return {e.path: version.read_bytes(e.path) for e in version.files()}


def test_a_long_log_adds_one_index_file_and_finds_its_own_blobs_across_steps(any_store, tmp_path, monkeypatch):
    store = any_store
    monkeypatch.setattr(treestream, "BATCH_FILES", 20)
    monkeypatch.setattr(treestream, "COMMIT_FILES", 20)  # a step every 20 files: 7 of them
    same = b"the same bytes, in the first folder and in the last"
    data = _folder(tmp_path / "data", folders=6, files=25, same=same)
    store.log(b"an earlier version", name="other")
    before = _index_files(store)
    steps = []
    checkpoint = type(store.blobs).checkpoint
    monkeypatch.setattr(type(store.blobs), "checkpoint", lambda self: (steps.append(1), checkpoint(self))[1])

    version = store.log(Artifact("ds").add_dir(data))

    assert len(steps) >= 5
    assert len(_index_files(store) - before) == 1  # one index file for the whole log
    assert _index_files(store) >= before
    digest = version.entry("d00/same.bin").digest
    assert _copies(store, digest) == 1  # found in an earlier step's local index, not stored twice
    fresh = _fresh(store)
    assert _contents(fresh.get("ds:v0")) == {str(p.relative_to(data)): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert fresh.verify().ok


def _temporaries(store: plait.Store) -> list[str]:
    """Temporary files left where index files are written: the store's index folder, or the cache's."""
    index = store.blobs.index
    folder = store.backend.local_path("index") if store.backend.is_local else os.path.join(index.cache_dir, "index")
    return [n for n in os.listdir(folder) if n.endswith(".tmp")] if os.path.isdir(folder) else []


def test_a_long_log_lists_its_blobs_once_in_memory_and_reads_its_index_file_when_next_looked_in(any_store, tmp_path, monkeypatch):
    store = any_store
    monkeypatch.setattr(treestream, "BATCH_FILES", 20)
    monkeypatch.setattr(treestream, "COMMIT_FILES", 20)
    data = _folder(tmp_path / "data", folders=5, files=25, same=b"in two folders")
    store.log(b"an earlier version", name="other")
    before = _index_files(store)

    def built_in_memory(*args, **kwargs):
        raise AssertionError("the log's index file was built in memory beside its steps' indexes")

    monkeypatch.setattr(packindex, "encode_merged", built_in_memory)
    version = store.log(Artifact("ds").add_dir(data))

    (key,) = _index_files(store) - before
    name = key.rsplit("/", 1)[-1]
    index = store.blobs.index
    assert name not in index.files  # written a range at a time, not read back yet
    assert all(store.blobs.has(e.digest) for e in version.files())  # read once looked in
    assert name in index.files and index.files[name].count > 100
    assert _temporaries(store) == []
    fresh = _fresh(store)
    assert _contents(fresh.get("ds:v0")) == {str(p.relative_to(data)): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert fresh.verify().ok


def test_a_full_disk_while_the_index_file_is_written_refuses_the_log_and_leaves_no_temporary(any_store, tmp_path, monkeypatch):
    store = any_store
    monkeypatch.setattr(treestream, "BATCH_FILES", 20)
    monkeypatch.setattr(treestream, "COMMIT_FILES", 20)
    data = _folder(tmp_path / "data", folders=4, files=25, same=b"twice")
    write_merged = packindex.write_merged

    def full_half_way(files, algorithm, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half an index file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(packindex, "write_merged", full_half_way)
    with pytest.raises(OSError, match="No space left on device"):
        store.log(Artifact("ds").add_dir(data))
    assert _temporaries(store) == []
    assert store.backend.find("versions") == {} and _index_files(store) == set()  # nothing names the packs

    monkeypatch.setattr(packindex, "write_merged", write_merged)
    version = store.log(Artifact("ds").add_dir(data))  # reuses what the steps kept, and lists it

    assert len(_index_files(store)) == 1 and _temporaries(store) == []
    fresh = _fresh(store)
    assert _contents(fresh.get(version.spec)) == _contents(version)
    assert fresh.verify().ok


def test_only_a_temporary_index_file_an_hour_old_is_taken_from_a_cache_folder(tmp_path):
    import time

    folder = tmp_path / "index"
    folder.mkdir()
    for name in (".merged.dead.tmp", ".merged.writing.tmp", "01M8ZMPJ58WBNF0885AAZ6AST0-65c93127", ".other.old.tmp"):
        (folder / name).write_bytes(b"bytes")
    old = time.time() - packindex.STALE_TEMPORARY_SECONDS - 60
    for name in (".merged.dead.tmp", "01M8ZMPJ58WBNF0885AAZ6AST0-65c93127", ".other.old.tmp"):
        os.utime(folder / name, (old, old))

    packindex._drop_stale_temporaries(str(folder))

    # another writer's file being written stays; so do cached index files and what is not ours
    assert sorted(os.listdir(folder)) == sorted([".merged.writing.tmp", "01M8ZMPJ58WBNF0885AAZ6AST0-65c93127", ".other.old.tmp"])


def test_a_full_disk_after_a_step_refuses_the_log_and_the_next_log_lists_everything(file_store, tmp_path, monkeypatch):
    store = file_store.init()
    monkeypatch.setattr(treestream, "BATCH_FILES", 20)
    monkeypatch.setattr(treestream, "COMMIT_FILES", 20)
    data = _folder(tmp_path / "data", folders=4, files=25, same=b"twice")
    blobs = type(store.blobs)
    checkpoint, add = blobs.checkpoint, PackWriter.add
    steps = []

    def full_after_two_steps(self, digest, payload):
        if len(steps) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return add(self, digest, payload)

    monkeypatch.setattr(blobs, "checkpoint", lambda self: (steps.append(1), checkpoint(self))[1])
    monkeypatch.setattr(PackWriter, "add", full_after_two_steps)
    with pytest.raises(OSError, match="No space left on device"):
        store.log(Artifact("ds").add_dir(data))
    assert store.backend.find("versions") == {} and _index_files(store) == set()  # nothing names the packs

    monkeypatch.setattr(PackWriter, "add", add)
    version = store.log(Artifact("ds").add_dir(data))  # reuses what the steps kept, and lists it

    assert len(_index_files(store)) == 1
    fresh = _fresh(store)
    assert _contents(fresh.get(version.spec)) == _contents(version)
    assert fresh.verify().ok


def test_another_store_object_never_relies_on_blobs_a_step_kept_but_no_index_file_lists(file_store):
    store = file_store.init()
    kept = store.blobs.put_bytes(b"stored, in a step, never listed")
    store.blobs.checkpoint()
    assert store.blobs.has(kept)  # this object knows the pack holds it

    other = _fresh(store)  # the same store, opened again in this process: its own blob store
    assert not other.blobs.has(kept)
    version = other.log(b"stored, in a step, never listed", name="other")  # so it stores its own copy

    assert version.files()[0].digest == kept
    fresh = _fresh(store)
    assert fresh.get("other:v0").read_bytes(version.files()[0].path) == b"stored, in a step, never listed"
    assert fresh.verify().ok
