"""Writing a file straight into a store (``Store.write_file``): bytes cut, hashed and stored as
they are written, with the digest and chunks the same file logged from disk gets."""

from __future__ import annotations

import os
import random
import tracemalloc

import pytest

import plait
from plait.errors import InvalidInputError, InvalidPathError, StoreError
from plait.storage.digest import CHUNK_THRESHOLD, CUT_WINDOW


def _write(store: plait.Store, draft: plait.Artifact, path: str, data: bytes, seed: int = 0) -> None:
    rng = random.Random(seed)
    with store.write_file(draft, path) as f:
        i = 0
        while i < len(data):  # writes of every size, a byte to more than a window
            step = rng.choice([1, 1000, 65_536, 777_777, CUT_WINDOW + 3])
            f.write(memoryview(data)[i : i + step])
            i += step


def _stored_bytes(store: plait.Store) -> int:
    return sum(size for key, size in store.backend.find("packs").items())


@pytest.mark.parametrize("size", [0, 5, CHUNK_THRESHOLD - 1, CHUNK_THRESHOLD, CHUNK_THRESHOLD + 1, 3 * CHUNK_THRESHOLD + 12_345])
def test_a_written_file_gets_the_digest_and_chunks_of_the_same_file_logged_from_disk(file_store, tmp_path, size):
    data = random.Random(size).randbytes(size)
    (tmp_path / "model.bin").write_bytes(data)
    from_disk = file_store.log(plait.Artifact("disk").add_file(tmp_path / "model.bin"))
    draft = plait.Artifact("written", type="model")
    _write(file_store, draft, "model.bin", data, seed=size)
    written = file_store.log(draft)
    assert written.entry("model.bin") == from_disk.entry("model.bin")
    assert (written.entry("model.bin").chunks is not None) == (size >= CHUNK_THRESHOLD)
    assert written.digest == from_disk.digest and written.read_bytes("model.bin") == data
    assert file_store.verify().ok


def test_writing_a_stored_file_again_stores_no_new_bytes(file_store):
    data = random.Random(1).randbytes(3 * CHUNK_THRESHOLD)
    first = plait.Artifact("weights")
    _write(file_store, first, "w.bin", data)
    file_store.log(first)
    before = _stored_bytes(file_store)
    again = plait.Artifact("weights-copy")
    _write(file_store, again, "w.bin", data, seed=9)
    copy = file_store.log(again)
    assert _stored_bytes(file_store) - before < 4096  # a tree node and a version, not 24 MiB of chunks
    assert copy.read_bytes("w.bin") == data


def test_written_files_sit_beside_files_from_disk_and_bytes_in_one_version(file_store, tmp_path):
    (tmp_path / "config.json").write_text('{"lr": 0.1}')
    draft = plait.Artifact("run-output").add_file(tmp_path / "config.json", name="config.json").add_bytes(b"note", "notes/a.txt")
    with file_store.write_file(draft, "weights/model.pt") as f:
        f.write(b"\x00" * 1000)
        assert f.tell() == 1000
    version = file_store.log(draft)
    assert sorted(e.path for e in version.files()) == ["config.json", "notes/a.txt", "weights/model.pt"]
    assert version.read_bytes("weights/model.pt") == b"\x00" * 1000


def test_an_error_inside_the_block_adds_nothing_and_the_draft_still_logs(file_store):
    draft = plait.Artifact("partial").add_bytes(b"kept", "kept.txt")
    with pytest.raises(RuntimeError, match="serializer failed"):
        with file_store.write_file(draft, "half.bin") as f:
            f.write(os.urandom(CHUNK_THRESHOLD + 1))
            raise RuntimeError("serializer failed")
    assert f.closed
    with pytest.raises(ValueError, match="closed"):
        f.write(b"more")
    version = file_store.log(draft)
    assert [e.path for e in version.files()] == ["kept.txt"]
    assert file_store.verify().ok


@pytest.mark.parametrize("path", ["../escape.bin", "/abs.bin", "a/../../b", ""])
def test_a_bad_path_is_refused_before_anything_is_written(tmp_path, path):
    store = plait.Store(tmp_path / "store")
    with pytest.raises(InvalidPathError):
        with store.write_file(plait.Artifact("x"), path) as f:
            f.write(b"never")
    assert not (tmp_path / "store").exists()  # not even created


def test_a_file_written_into_one_store_is_refused_by_another(tmp_path):
    one, other = plait.Store(tmp_path / "one"), plait.Store(tmp_path / "other")
    draft = plait.Artifact("model")
    with one.write_file(draft, "m.bin") as f:
        f.write(b"weights")
    with pytest.raises(InvalidInputError, match=r"'m.bin' of the draft of 'model' was written into another store"):
        other.log(draft)
    assert other.artifacts() == [] and one.log(draft).read_bytes("m.bin") == b"weights"


def test_bytes_dropped_by_a_failed_pack_write_are_refused_at_log_time_and_nothing_is_made(file_store):
    draft = plait.Artifact("model")
    _write(file_store, draft, "m.bin", random.Random(2).randbytes(2 * CHUNK_THRESHOLD))
    file_store.blobs.abort()  # what a failed pack write does: the open packs, and these chunks, are dropped
    with pytest.raises(StoreError, match=r"1 file\(s\) written into the store for 'model' were lost .*m.bin; write them again"):
        file_store.log(draft)
    assert file_store.artifacts() == []
    again = plait.Artifact("model")
    _write(file_store, again, "m.bin", random.Random(2).randbytes(2 * CHUNK_THRESHOLD))
    assert file_store.log(again).number == 0 and file_store.verify().ok


def test_memory_stays_flat_however_large_the_file(file_store):
    draft = plait.Artifact("big")
    block = random.Random(3).randbytes(1 << 20)
    tracemalloc.start()
    try:
        with file_store.write_file(draft, "big.bin") as f:
            for i in range(96):  # 96 MiB, in 1 MiB writes
                f.write(block[i:] + block[:i])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * CUT_WINDOW, peak  # a window waiting to be cut and a chunk or two, not the file
    assert file_store.log(draft).entry("big.bin").size == 96 << 20


def test_on_s3_a_written_file_is_read_back_by_another_process_view_of_the_store(s3_store):
    data = random.Random(4).randbytes(CHUNK_THRESHOLD + 5)
    draft = plait.Artifact("remote")
    _write(s3_store, draft, "r.bin", data)
    version = s3_store.log(draft)
    fresh = plait.Store(s3_store.url, storage_options=s3_store.storage_options)
    assert fresh.get("remote:v0").read_bytes("r.bin") == data and version.number == 0
    assert fresh.verify().ok


def test_a_run_logging_a_written_file_is_its_producer(file_store):
    with plait.run("train", store=file_store) as run:
        draft = plait.Artifact("classifier", type="model")
        with file_store.write_file(draft, "model.pt") as f:
            f.write(b"state dict")
        version = run.log(draft)
    assert version.produced_by is not None and version.produced_by.id == run.id


def test_a_full_disk_while_writing_raises_there_adds_nothing_and_the_next_write_stores_everything(file_store, monkeypatch):
    import errno

    from plait.storage.packs import PackWriter

    add = PackWriter.add

    def full_disk(self, digest, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    data = random.Random(5).randbytes(3 * CHUNK_THRESHOLD)
    draft = plait.Artifact("model").add_bytes(b"kept", "kept.txt")
    monkeypatch.setattr(PackWriter, "add", full_disk)
    with pytest.raises(OSError, match="No space left"):
        _write(file_store, draft, "m.bin", data)
    monkeypatch.setattr(PackWriter, "add", add)
    assert [e.path for e in file_store.log(draft).files()] == ["kept.txt"]
    again = plait.Artifact("model")
    _write(file_store, again, "m.bin", data)
    assert file_store.log(again).read_bytes("m.bin") == data
    assert plait.Store(file_store.url).verify().ok
