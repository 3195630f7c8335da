"""A large file logged into a packed store is read once: cut, hashed and its new chunks appended
to the open pack as it is read. Its cuts and digests are the ones cutting the whole file at once
gives (version digests and dedup against stores written before depend on them), the bytes stored
are the bytes hashed, and a file that changes while it is read is refused."""

from __future__ import annotations

import os
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


def whole_cuts(data: bytes) -> tuple[tuple[str, int], ...]:
    """The FastCDC cuts of ``data`` given to the chunker in one buffer, with their digests."""
    return tuple((xxhash.xxh3_128_hexdigest(c.data), c.length) for c in D.new_chunker().cut_buf(data))


def variants(seed: int) -> list[bytes]:
    """A random file of 20-40 MiB with runs of zeros (max-size cuts), then the same after a
    1-byte patch, a 4 KiB insertion, a deletion and an append."""
    rng = random.Random(seed)
    parts = [rand(rng.randrange(1, 12 * MiB), seed + i) if i % 3 else bytes(rng.randrange(0, 9 * MiB)) for i in range(5)]
    base = b"".join(parts)[: 40 * MiB]
    base += rand(max(0, 20 * MiB - len(base)), seed + 100)
    at = rng.randrange(len(base))
    patched = base[:at] + bytes([base[at] ^ 1]) + base[at + 1 :]
    inserted = base[:at] + rand(4096, seed + 200) + base[at:]
    deleted = base[:at] + base[at + 3 * MiB :]
    appended = base + rand(rng.randrange(1, 5 * MiB), seed + 300)
    return [base, patched, inserted, deleted, appended]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_pass_cuts_hashes_and_stores_exactly_what_cutting_the_whole_file_gives(file_store, tmp_path: Path,
                                                                                   seed: int) -> None:
    path = tmp_path / "big.bin"
    stored: set[str] = set()
    for data in variants(seed):
        path.write_bytes(data)
        expected = D.FileDigest(xxhash.xxh3_128_hexdigest(data), len(data), whole_cuts(data))
        assert D.digest_file(str(path)) == expected
        fd = file_store.blobs.ingest_file(str(path))
        assert fd == expected
        file_store.blobs.commit()
        now = Blobs.stored(file_store)
        assert set(now) - stored == {d for d, _ in fd.chunks} - stored  # only the new chunks were added
        stored = set(now)
        offset = 0
        for digest, n in fd.chunks:
            assert file_store.blobs.read(digest) == data[offset : offset + n]
            offset += n


def test_a_chunk_the_store_holds_is_not_appended_again(file_store, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = rand(24 * MiB, 9)
    path.write_bytes(data)
    file_store.log(str(path), name="model")
    packs = set(file_store.backend.find("packs"))
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # the last chunk changes
    written: list[int] = []
    fd = file_store.blobs.ingest_file(str(path), written.append)
    assert sum(written) == len(data)  # progress counts each byte once: read once
    file_store.blobs.commit()
    new_packs = set(file_store.backend.find("packs")) - packs
    assert len(new_packs) == 1
    pack_bytes = file_store.backend.size(new_packs.pop())
    assert fd.chunks[-1][1] < pack_bytes < fd.chunks[-1][1] + 4096  # the changed chunk and a header


def test_one_pass_to_a_remote_store_round_trips(memory_store, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = rand(30 * MiB, 10)
    path.write_bytes(data)
    version = memory_store.log(str(path), name="model")
    assert version.files()[0].chunks == whole_cuts(data)
    assert Path(version.download(tmp_path / "out"), "big.bin").read_bytes() == data
    assert version.verify() == []


@pytest.mark.parametrize("change", ["append", "truncate", "rewrite"])
def test_a_file_changed_while_it_is_read_is_refused_and_what_was_stored_is_sound(file_store, tmp_path: Path,
                                                                                 change: str) -> None:
    path = tmp_path / "big.bin"
    data = rand(40 * MiB, 11)
    path.write_bytes(data)

    def meddle(_: int) -> None:  # called once the first stretch is hashed: the reader is mid-file
        if meddle.done:
            return
        meddle.done = True
        if change == "append":
            with open(path, "ab") as f:
                f.write(b"more")
        elif change == "truncate":
            os.truncate(path, 20 * MiB)
        else:  # the same size, other bytes at the end, an mtime set back to what it was
            st = os.stat(path)
            with open(path, "r+b") as f:
                f.seek(-MiB, os.SEEK_END)
                f.write(rand(MiB, 12))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))

    meddle.done = False
    with pytest.raises(plait.FileChangedError, match="changed while it was being read"):
        file_store.blobs.ingest_file(str(path), meddle)
    file_store.blobs.commit()
    for digest, size in Blobs.stored(file_store).items():  # what was appended meanwhile hashes to its name
        assert len(file_store.blobs.read(digest)) == size
    assert plait.Store(file_store.url).verify().ok


def test_a_file_changed_while_logged_makes_no_version_and_logs_once_still(file_store, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = rand(30 * MiB, 13)
    path.write_bytes(data)

    def grow(digest: str, chunk: memoryview) -> None:
        if not grow.done:
            grow.done = True
            with open(path, "ab") as f:
                f.write(b"x")

    grow.done = False
    with pytest.raises(plait.FileChangedError):
        D.digest_file(str(path), sink=grow)
    version = file_store.log(str(path), name="model")
    assert version.files()[0].size == len(data) + 1
    assert Path(version.download(tmp_path / "out"), "big.bin").read_bytes() == data + b"x"
