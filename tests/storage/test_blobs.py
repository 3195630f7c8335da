"""Blobs always hold the bytes their name says: what is stored is hashed on its way in, a file
that changes or vanishes meanwhile is refused with one clear error, and a blob of another size
than its manifest says is caught by download and by verify."""

from __future__ import annotations

import os

import pytest
from blobview import Blobs
from settle import settle

from plait import FileChangedError, IntegrityError, SourceError, Store
from plait.storage.digest import digest_file


def _rewrite_in_place(path, data: bytes) -> None:
    """Rewrite a file to other bytes of the same size and put its mtime back, as some tools do."""
    st = os.stat(path)
    assert len(data) == st.st_size
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_a_same_size_rewrite_with_its_mtime_restored_is_refused_not_stored_under_the_old_name(
        request, make_files, backend: str) -> None:
    store: Store = request.getfixturevalue(f"{backend}_store")
    folder = make_files({"weights.bin": b"A" * 70_000})  # large enough for the stat cache to remember it
    settle(folder)
    first = store.log(folder, name="w")
    first.delete()
    store.gc(dry_run=False, grace_seconds=0)  # the blob is gone; the stat cache still knows the file
    _rewrite_in_place(folder / "weights.bin", b"B" * 70_000)
    with pytest.raises(FileChangedError, match="weights.bin changed while it was being stored; log it again"):
        store.log(folder, name="w")
    assert Blobs.stored(store) == {}  # nothing stored under a name its bytes do not have
    os.utime(folder / "weights.bin")  # a real change of mtime: hashed afresh, stored right
    again = store.log(folder, name="w")
    assert again.read_bytes("weights.bin") == b"B" * 70_000 and store.verify().ok


def test_a_file_rewritten_after_hashing_is_refused_and_leaves_no_blob(file_store: Store, tmp_path) -> None:
    store = file_store.init()
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 1000)
    fd = digest_file(str(path), store.algorithm)
    _rewrite_in_place(path, b"y" * 1000)
    with pytest.raises(FileChangedError):
        store.blobs.put_file(str(path), fd)
    store.blobs.commit()
    assert fd.digest not in Blobs.stored(store)
    assert store.backend.stale_temporaries("blobs", older_than=float("inf")) == {}
    assert store.backend.stale_temporaries("packs", older_than=float("inf")) == {}


def test_a_file_deleted_before_it_is_stored_is_one_clear_error(file_store: Store, tmp_path) -> None:
    store = file_store.init()
    path = tmp_path / "gone.bin"
    path.write_bytes(b"soon gone")
    fd = digest_file(str(path), store.algorithm)
    path.unlink()
    with pytest.raises(SourceError, match="gone.bin was deleted while it was being stored; log it again"):
        store.blobs.put_file(str(path), fd)
    assert store.backend.stale_temporaries("blobs", older_than=float("inf")) == {}


def test_a_blob_shorter_than_its_entry_says_fails_download_and_verify(file_store: Store, make_files, tmp_path) -> None:
    """A manifest may claim any size; the bytes written and ``verify`` both hold it to the blob."""
    from plait import Entry, Manifest
    from plait.formats import records as R

    store = file_store.init()
    digest = store.blobs.put_bytes(b"hello")
    manifest = Manifest.of([Entry(path="h.txt", digest=digest, size=9)], store.algorithm)  # the blob holds 5
    record = store.create_version({"name": "short", "type": "dataset", "digest": store.put_manifest(manifest),
                                   "size": 9, "file_count": 1, "created_at": "2024-01-01T00:00:00Z"})
    store.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"))
    with pytest.raises(IntegrityError, match="fewer bytes than the manifest says"):
        store.get("short:v0").download(tmp_path / "out")
    assert not (tmp_path / "out" / "h.txt").exists()
    report = store.verify()
    assert [(s, p) for s, p, _, _ in report.problems] == [("short:v0", "h.txt")]
    assert store.get("short:v0").verify() == ["h.txt"]
