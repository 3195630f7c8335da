"""Downloads: every file verified, written atomically, never outside the folder, cached copies reused."""

from __future__ import annotations

import os
import tracemalloc
import zlib
from pathlib import Path

import pytest
from blobview import Blobs
from settle import rewrite_within_one_tick

from plait import Artifact, CorruptRecordError, IntegrityError, InvalidInputError, InvalidPathError, Store
from plait.api.store import Store as _Store
from plait.storage.digest import hash_bytes
from plait.store import download as download_mod


def tree(folder: Path) -> dict[str, bytes]:
    """Return ``{relative path: bytes}`` of every file below ``folder``."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def damage(store: Store, digest: str) -> None:
    """Overwrite a stored blob with other bytes of the same length."""
    key, start, end = Blobs.where(store, digest)
    Blobs.overwrite(store, digest, bytes(b ^ 0xFF for b in store.backend.read(key)[start:end]))


def test_download_writes_every_file_with_its_bytes(store: Store, make_files, tmp_path: Path) -> None:
    files = {"a.txt": b"alpha", "deep/er/b.bin": os.urandom(3000), "empty": b""}
    v = store.log(make_files(files), name="ds")
    out = v.download(tmp_path / "out")
    assert out == str(tmp_path / "out")
    assert tree(tmp_path / "out") == files


def test_download_defaults_to_the_cache(store: Store) -> None:
    v = store.log(Artifact("ds").add_bytes(b"x", "x.txt"))
    folder = Path(v.download())
    assert folder.parts[-3:] == ("versions", "ds", "v0") and (folder / "x.txt").read_bytes() == b"x"


def test_download_only_some_paths(store: Store, make_files, tmp_path: Path) -> None:
    v = store.log(make_files({"a": "A", "b": "B", "c/d": "D"}), name="ds")
    v.download(tmp_path / "out", paths=["c/d"])
    assert tree(tmp_path / "out") == {"c/d": b"D"}


def test_a_damaged_blob_leaves_nothing_at_the_destination(store: Store, make_files, tmp_path: Path) -> None:
    v = store.log(make_files({"good.txt": "fine", "bad.txt": "will be damaged"}), name="ds")
    damage(store, v.entry("bad.txt").digest)
    dest = tmp_path / "out"
    with pytest.raises(IntegrityError, match="bad.txt") as info:
        v.download(dest, paths=["bad.txt"])
    assert info.value.digest == v.entry("bad.txt").digest
    assert not dest.exists() or os.listdir(dest) == []  # no file, no temporary left behind
    with pytest.raises(IntegrityError):
        v.read_bytes("bad.txt")
    assert v.verify() == ["bad.txt"]


def test_a_damaged_chunk_of_a_large_file_leaves_nothing(store: Store, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(10 << 20))
    v = store.log(big, name="w", type="model")
    chunks = v.entry("big.bin").chunks
    assert chunks is not None and len(chunks) > 1
    damage(store, chunks[-1][0])
    with pytest.raises(IntegrityError):
        v.download(tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_a_missing_blob_is_an_integrity_error(store: Store, tmp_path: Path) -> None:
    v = store.log(Artifact("ds").add_bytes(b"gone soon", "x"))
    Blobs.remove(store, v.entry("x").digest)
    with pytest.raises(IntegrityError, match="missing from the store"):
        v.download(tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_files_already_in_place_are_not_written_again(store: Store, make_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = store.log(make_files({"a": "A" * 100, "b": "B" * 100}), name="ds")
    dest = tmp_path / "out"
    v.download(dest)

    def files() -> dict[str, tuple[int, int]]:  # a file written again is a new inode (written beside, renamed over)
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dest.iterdir()}

    first = files()
    v.download(dest)
    assert files() == first
    (dest / "b").write_bytes(b"X" * 100)  # a local edit of the same size is noticed: refused, then repaired on request
    edited = files()
    with pytest.raises(InvalidInputError, match=r"out already holds 1 file that differs from ds:v0: b; pass --force"):
        v.download(dest)
    assert files() == edited and (dest / "b").read_bytes() == b"X" * 100
    v.download(dest, force=True)
    after = files()
    assert after["a"] == first["a"] and after["b"] != edited["b"] and (dest / "b").read_bytes() == b"B" * 100


@pytest.mark.usefixtures("slow_to_settle")
@pytest.mark.parametrize("form", [1, 2])
def test_a_file_get_wrote_and_edited_within_one_clock_tick_is_logged_with_its_edit(store: Store, make_files, tmp_path: Path,
                                                                                    form: int) -> None:
    store = Store(store.url, format=form)
    big = "original" * 10_000  # above the size from which a file has a stat-cache row of its own
    v = store.log(make_files({"a.txt": big, "b.txt": "small"}), name="ds")
    dest = tmp_path / "out"
    v.download(dest)
    rewrite_within_one_tick(dest / "a.txt", b"EDITED!!" * 10_000)  # same size, same mtime as get left it
    again = store.log(dest, name="ds")
    assert again.spec == "ds:v1" and again.read_bytes("a.txt") == b"EDITED!!" * 10_000


def test_a_remote_blob_is_fetched_once_then_read_from_the_cache(memory_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    v = memory_store.log(Artifact("ds").add_bytes(b"cached bytes", "x"))
    reads: list[str] = []
    for method in ("read", "read_range"):
        real = getattr(memory_store.backend, method)
        monkeypatch.setattr(memory_store.backend, method, lambda key, *a, _real=real: (reads.append(key), _real(key, *a))[1])
    assert v.read_bytes("x") == b"cached bytes"
    assert v.read_bytes("x") == b"cached bytes"
    assert [k for k in reads if k.startswith(("blobs/", "packs/"))] == [Blobs.where(memory_store, v.entry("x").digest)[0]]


def _craft_version(store: Store, path: str) -> str:
    """Put a manifest holding ``path`` into the store by hand, as a hostile writer could, and a version of it."""
    blob = store.blobs.put_bytes(b"payload")
    raw = ('{"algorithm":"xxh3-128","entries":[{"digest":"%s","path":%s,"size":7}],"format":1}' % (blob, _json(path))).encode()
    digest = hash_bytes(raw)
    store.backend.write(f"manifests/{digest[:2]}/{digest}", zlib.compress(raw))
    store.create_version({"name": "evil", "type": "dataset", "digest": digest, "size": 7, "file_count": 1,
                          "description": "", "metadata": {}, "created_at": "2024-01-01T00:00:00Z", "created_by": None})
    return digest


def _json(text: str) -> str:
    import json

    return json.dumps(text)


@pytest.mark.parametrize("path", ["../../escaped.txt", "/tmp/escaped.txt", "C:/escaped.txt", "a/../../escaped.txt"])
def test_a_crafted_manifest_with_an_escaping_path_is_refused(store: Store, tmp_path: Path, path: str) -> None:
    _craft_version(store, path)
    v = _Store(store.url).get("evil:v0")
    dest = tmp_path / "deep" / "out"
    with pytest.raises(CorruptRecordError, match="cannot be read"):
        v.download(dest)
    with pytest.raises(CorruptRecordError):
        v.files()
    assert not dest.exists()
    assert not any(p.name == "escaped.txt" for p in tmp_path.rglob("*"))
    assert not Path("/tmp/escaped.txt").exists()


def test_safe_join_refuses_a_symlink_planted_in_the_destination(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(tmp_path, dest / "link")
    assert download_mod.safe_join(str(dest), "sub/x.txt") == str(dest / "sub" / "x.txt")
    with pytest.raises(InvalidPathError, match="would be written outside"):
        download_mod.safe_join(str(dest), "link/x.txt")
    with pytest.raises(InvalidPathError, match="climbs out"):
        download_mod.safe_join(str(dest), "../x.txt")


def test_a_symlink_where_a_file_goes_is_replaced_never_followed(file_store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("stored")
    v = file_store.log(str(data), name="data")
    outside = tmp_path / "outside.txt"
    outside.write_text("stored")  # even the same bytes: the link is not trusted as the file
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "a.txt")
    with pytest.raises(InvalidInputError, match="already holds 1 file that differs from data:v0: a.txt"):
        v.download(dest)
    assert (dest / "a.txt").is_symlink()
    v.download(dest, force=True)
    assert not (dest / "a.txt").is_symlink() and (dest / "a.txt").read_text() == "stored"
    assert outside.read_text() == "stored"


def _write_random(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size >> 20):
            f.write(block[i % 7 :] + block[: i % 7])  # shifted, so chunks are not all identical


def test_memory_stays_flat_while_logging_and_downloading_a_large_file(file_store: Store, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    _write_random(big, 200 << 20)
    tracemalloc.start()
    try:
        v = file_store.log(big, name="big", type="model")
        _, log_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        v.download(tmp_path / "out")
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert v.size == 200 << 20
    assert (tmp_path / "out" / "big.bin").stat().st_size == 200 << 20
    assert log_peak < 32 << 20, f"logging 200 MiB peaked at {log_peak >> 20} MiB"
    assert download_peak < 16 << 20, f"downloading 200 MiB peaked at {download_peak >> 20} MiB"
