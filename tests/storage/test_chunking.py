"""Large files are stored as content-defined chunks: an append, an overwrite or an insertion
stores only the chunks around the change, and a chunked file comes back and verifies exactly
like a whole one."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import xxhash
from blobview import Blobs

import plait
from plait.storage import digest as D

MiB = 1 << 20


def rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def chunk_set(fd: D.FileDigest) -> set[tuple[str, int]]:
    assert fd.chunks is not None
    return set(fd.chunks)


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(rand(40 * MiB, 1))
    return path


def test_files_below_the_threshold_are_one_blob(tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(rand(D.CHUNK_THRESHOLD - 1, 2))
    fd = D.digest_file(str(path))
    assert fd.chunks is None
    assert fd.blobs == ((xxhash.xxh3_128_hexdigest(path.read_bytes()), D.CHUNK_THRESHOLD - 1),)


def test_a_large_file_is_cut_into_chunks_within_the_size_limits(big: Path) -> None:
    data = big.read_bytes()
    fd = D.digest_file(str(big))
    assert fd.digest == xxhash.xxh3_128_hexdigest(data)
    assert sum(n for _, n in fd.chunks) == len(data)
    assert all(D.CHUNK_MIN <= n <= D.CHUNK_MAX for _, n in fd.chunks[:-1])
    offset = 0
    for digest, n in fd.chunks:
        assert digest == xxhash.xxh3_128_hexdigest(data[offset : offset + n])
        offset += n
    assert 20 <= len(fd.chunks) <= 40  # ~1.25 MiB on average


def test_appending_4_mib_adds_at_most_twice_the_appended_bytes(big: Path) -> None:
    before = D.digest_file(str(big))
    with open(big, "ab") as f:
        f.write(rand(4 * MiB, 3))
    after = D.digest_file(str(big))
    new = chunk_set(after) - chunk_set(before)
    assert sum(n for _, n in new) <= 2 * 4 * MiB
    assert len(new) <= 6
    assert after.chunks[: len(before.chunks) - 1] == before.chunks[:-1]


@pytest.mark.parametrize("edit", ["overwrite", "insert"])
def test_a_4_kib_edit_in_the_middle_stores_at_most_4_mib(big: Path, edit: str) -> None:
    before = D.digest_file(str(big))
    data = big.read_bytes()
    mid = len(data) // 2 + 777
    patch = rand(4096, 4)
    data = data[:mid] + patch + data[mid + (4096 if edit == "overwrite" else 0) :]
    big.write_bytes(data)
    after = D.digest_file(str(big))
    new = chunk_set(after) - chunk_set(before)
    assert 1 <= len(new) <= 2
    assert sum(n for _, n in new) <= 4 * MiB


def sequential_cuts(path: Path) -> list[tuple[str, int]]:
    with open(path, "rb") as f:
        return [(xxhash.xxh3_128_hexdigest(c.data), c.length) for c in D.new_chunker().cut_stream(f)]


@pytest.mark.parametrize("kind", ["random", "zeros", "mixed"])
def test_windowed_cutting_gives_exactly_the_sequential_cuts(tmp_path: Path, kind: str) -> None:
    # 30 MiB through two 8 MiB windows: chunks end exactly at a window's end (zeros: max-size
    # chunks), cross from one window into the other, and the file ends mid-window
    parts = {
        "random": [rand(30 * MiB, 5)],
        "zeros": [bytes(30 * MiB)],
        "mixed": [rand(9 * MiB, 6), bytes(11 * MiB + 12345), rand(10 * MiB, 7)],
    }[kind]
    path = tmp_path / f"{kind}.bin"
    path.write_bytes(b"".join(parts))
    fd = D.digest_file(str(path))
    assert list(fd.chunks) == sequential_cuts(path)
    assert fd.digest == xxhash.xxh3_128_hexdigest(path.read_bytes())


def test_a_chunked_file_round_trips_and_verifies_like_a_whole_one(store: plait.Store, big: Path, tmp_path: Path) -> None:
    version = store.log(str(big), name="model")
    entry = version.files()[0]
    assert entry.chunks is not None and len(entry.chunks) > 1
    assert all(store.blobs.has(d) for d, _ in entry.chunks)
    assert not store.blobs.has(entry.digest)  # the whole file is not stored a second time
    out = Path(version.download(tmp_path / "out"))
    assert (out / "big.bin").read_bytes() == big.read_bytes()
    assert version.verify() == []
    with version.open("big.bin") as f:
        assert xxhash.xxh3_128_hexdigest(f.read()) == entry.digest


def test_a_second_version_after_an_append_stores_only_the_new_chunks(file_store: plait.Store, big: Path) -> None:
    file_store.log(str(big), name="model")
    before = Blobs.stored(file_store)
    with open(big, "ab") as f:
        f.write(rand(4 * MiB, 8))
    file_store.log(str(big), name="model")
    added = {d: n for d, n in Blobs.stored(file_store).items() if d not in before}
    assert 4 * MiB <= sum(added.values()) <= 8 * MiB
    assert len(added) <= 6


def test_a_damaged_chunk_is_named_and_nothing_is_written(file_store: plait.Store, big: Path, tmp_path: Path) -> None:
    version = file_store.log(str(big), name="model")
    digest, _ = version.files()[0].chunks[3]
    Blobs.flip(file_store, digest, at=100)
    with pytest.raises(plait.IntegrityError, match=f"blob {digest}"):
        version.download(tmp_path / "out")
    assert not (tmp_path / "out" / "big.bin").exists()
    assert version.verify() == ["big.bin"]


def test_read_buffers_are_page_aligned() -> None:
    # reads into memory just past a page boundary run 5x slower from page cache (see digest.PAGE)
    import ctypes

    view = D.aligned_buffer(D.BUFFER_SIZE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(view))
    assert address % D.PAGE == 0 and len(view) == D.BUFFER_SIZE
