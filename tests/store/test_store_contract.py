"""The store contract: the same behaviour on every backend (``file``, ``memory``, ``s3``).

The first half pins the storage primitives a backend must offer (atomic write, exclusive
create, list, delete); the second half the Store built on them. The ``s3`` runs go through
s3fs to a real S3 API (moto's server on loopback), so conditional PUTs are real HTTP.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from blobview import Blobs

import plait
from plait.errors import IntegrityError, NotFoundError, StoreError, UnsupportedStoreError
from plait.index import events as E
from plait.storage.digest import hash_bytes


@pytest.fixture
def backend(any_store):
    """The storage primitives of a fresh store on each backend."""
    return any_store.backend


# -- primitives -----------------------------------------------------------------------------


def test_reading_a_missing_key_raises_file_not_found(backend):
    with pytest.raises(FileNotFoundError):
        backend.read("nothing/here")
    assert not backend.exists("nothing/here")
    assert backend.listdir("nothing") == []
    assert backend.find("nothing") == {}


def test_write_then_read_returns_the_same_bytes_and_overwrites(backend):
    backend.write("a/b/key", b"first")
    assert backend.read("a/b/key") == b"first"
    backend.write("a/b/key", b"second, longer")
    assert backend.read("a/b/key") == b"second, longer"
    assert backend.size("a/b/key") == len(b"second, longer")
    assert backend.exists("a/b/key")


def test_create_is_exclusive_and_keeps_the_first_bytes(backend):
    assert backend.create("records/one", b"mine") is True
    assert backend.create("records/one", b"theirs") is False
    assert backend.read("records/one") == b"mine"


def test_concurrent_creates_of_one_key_have_exactly_one_winner(backend):
    barrier = threading.Barrier(8)

    def race(i: int) -> bool:
        barrier.wait()
        return backend.create("race/key", f"writer {i}".encode())

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(race, range(8)))
    assert won.count(True) == 1
    assert backend.read("race/key") == f"writer {won.index(True)}".encode()


def test_listdir_find_and_delete(backend):
    backend.write_many({"p/x/1": b"1", "p/x/2": b"22", "p/y": b"333"})
    assert backend.listdir("p") == ["x", "y"]
    assert backend.listdir("p/x") == ["1", "2"]
    assert backend.find("p") == {"p/x/1": 1, "p/x/2": 2, "p/y": 3}
    assert backend.read_many(["p/x/1", "p/y", "p/missing"]) == {"p/x/1": b"1", "p/y": b"333"}
    backend.delete("p/x/1")
    backend.delete("p/x/1")  # deleting what is gone is not an error
    assert not backend.exists("p/x/1")
    assert backend.find("p") == {"p/x/2": 2, "p/y": 3}


def test_modified_time_is_recent(backend):
    backend.write("m/key", b"x")
    stamp = backend.modified("m/key")
    assert stamp is not None and abs(stamp - time.time()) < 120
    assert backend.modified("m/absent") is None


def test_a_filesystem_without_exclusive_create_is_refused_for_writing(tmp_path):
    target = tmp_path / "plain"
    target.mkdir()
    store = plait.Store(f"dir::file://{target}")
    with pytest.raises(UnsupportedStoreError, match="no exclusive create"):
        store.init()
    with pytest.raises(UnsupportedStoreError, match="no exclusive create"):
        store.log(b"bytes", name="refused")
    with pytest.raises(UnsupportedStoreError):
        store.backend.write("blobs/aa/x", b"x")
    assert list(target.iterdir()) == []  # nothing was written before the refusal


def test_a_store_on_a_read_only_filesystem_can_still_be_read(tmp_path):
    plait.Store(str(tmp_path / "s")).log(b"readable", name="doc")
    store = plait.Store(f"simplecache::file://{tmp_path / 's'}")
    assert store.backend.writable is False
    assert store.get("doc:v0").read_bytes("doc") == b"readable"


# -- the store ------------------------------------------------------------------------------


def test_init_creates_one_store_id_that_every_opener_sees(any_store):
    assert not any_store.exists
    any_store.init()
    store_id = any_store.id
    assert store_id
    again = plait.Store(any_store.url, storage_options=_options(any_store))
    assert again.init().id == store_id
    assert again.algorithm == "xxh3-128"


def test_log_get_and_download_round_trip_the_bytes(any_store, make_files, tmp_path):
    folder = make_files({"train.csv": "a,b\n1,2\n", "img/0.png": b"\x89PNG" + bytes(range(256)) * 40, "empty": b""})
    v0 = any_store.log(str(folder), name="ds", aliases=["prod"])
    assert (v0.spec, v0.file_count, "prod" in v0.aliases) == ("ds:v0", 3, True)
    got = any_store.get("ds:prod")
    assert got.digest == v0.digest
    out = got.download(tmp_path / "out")
    assert (tmp_path / "out" / "img" / "0.png").read_bytes() == (folder / "img" / "0.png").read_bytes()
    assert (tmp_path / "out" / "train.csv").read_text() == "a,b\n1,2\n"
    assert (tmp_path / "out" / "empty").read_bytes() == b""
    assert out == str(tmp_path / "out")
    entry = got.entry("train.csv")
    assert entry.digest == hash_bytes(b"a,b\n1,2\n", "xxh3-128")
    assert entry.digest in Blobs.stored(any_store)


def test_versions_are_numbered_in_order_and_same_bytes_reuse_the_latest(any_store):
    a = any_store.log(b"one", name="doc")
    b = any_store.log(b"two", name="doc")
    same = any_store.log(b"two", name="doc")
    assert [a.spec, b.spec, same.spec] == ["doc:v0", "doc:v1", "doc:v1"]
    assert [v.version for v in any_store.versions("doc")] == ["v0", "v1"]
    assert any_store.backend.listdir("versions/doc") == ["0", "1"]


def test_manifest_records_its_hash_algorithm(any_store):
    v = any_store.log(b"data", name="doc")
    assert v.manifest.algorithm == "xxh3-128"
    assert v.manifest.digest == v.digest


def test_blake3_store_logs_gets_and_verifies_end_to_end(any_store, tmp_path):
    store = plait.Store(any_store.url, storage_options=_options(any_store), hash="blake3").init()
    v = store.log(b"trust nobody", name="secure")
    assert store.algorithm == "blake3" and v.manifest.algorithm == "blake3"
    assert len(v.digest) == 64 and v.entry("secure").digest == hash_bytes(b"trust nobody", "blake3")
    reopened = plait.Store(any_store.url, storage_options=_options(any_store), hash="xxh3-128")
    assert reopened.algorithm == "blake3"  # the store keeps its own algorithm
    assert reopened.get("secure:latest").read_bytes("secure") == b"trust nobody"
    assert reopened.verify().ok


def test_alias_moves_are_events_and_history_replays_them(any_store):
    any_store.log(b"one", name="m")
    any_store.log(b"two", name="m")
    any_store.set_alias("m:v0", "best")
    any_store.set_alias("m:v1", "best")
    assert any_store.get("m:best").number == 1
    moves = [(h.kind, h.version, h.detail.get("old")) for h in any_store.get("m:v0").history() if h.kind == "alias.set"]
    assert moves == [("alias.set", "m:v0", None), ("alias.set", "m:v1", 0)]  # v0's history shows the alias leaving
    fresh = plait.Store(any_store.url, storage_options=_options(any_store))
    assert fresh.get("m:best").number == 1


def test_delete_needs_aliases_moved_first_unless_forced(any_store):
    any_store.log(b"one", name="m", aliases=["prod"])
    with pytest.raises(StoreError, match="move them first or pass force=True"):
        any_store.delete("m:v0")
    any_store.delete("m:v0", force=True)
    with pytest.raises(NotFoundError):
        any_store.get("m:v0")
    assert [e.kind for e in E.of_version(any_store.catalog, "m", 0)][-2:] == ["alias.removed", "version.deleted"]


def test_gc_frees_the_unique_blobs_of_a_deleted_version(any_store):
    keep = any_store.log(b"shared" * 100, name="a")
    gone = plait.Artifact("b").add_bytes(b"shared" * 100, "shared").add_bytes(b"unique" * 50, "unique")
    gone_v = any_store.log(gone)
    unique = gone_v.entry("unique").digest
    root = gone_v.manifest.root.raw_size  # the version's tree: one node, unique to it too
    any_store.delete("b:v0")
    dry = any_store.gc(grace_seconds=0)
    assert dry.dry_run and dry.blobs == sorted([unique, gone_v.digest]) and dry.bytes == 300 + root
    assert any_store.blobs.has(unique)
    done = any_store.gc(dry_run=False, grace_seconds=0)
    assert done.blobs == sorted([unique, gone_v.digest]) and done.bytes == 300 + root
    assert not {unique, gone_v.digest} & set(Blobs.stored(any_store, nodes=True))
    assert any_store.get("a:v0").read_bytes("a") == b"shared" * 100 and keep.digest
    assert any_store.verify().ok


def test_verify_reports_a_healthy_store(any_store):
    any_store.log(b"x" * 1000, name="a")
    report = any_store.verify()
    assert report.ok and report.versions == 1 and report.blobs == 1


def test_index_rebuilds_from_the_store_alone(any_store, tmp_path, monkeypatch):
    any_store.log(b"one", name="a", aliases=["prod"])
    any_store.log(b"two", name="a")
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "other-cache"))
    fresh = plait.Store(any_store.url, storage_options=_options(any_store))
    assert fresh.reindex() == 2
    assert fresh.get("a:prod").number == 0 and fresh.get("a:latest").number == 1


def test_damaged_blob_is_caught_on_read(any_store):
    v = any_store.log(b"precious bytes", name="a")
    digest = v.entry("a").digest
    Blobs.overwrite(any_store, digest, b"precious bytez")
    with pytest.raises(IntegrityError, match="damaged"):
        any_store.blobs.read(digest)


def _options(store: plait.Store) -> dict | None:
    fs = getattr(store.backend, "fs", None)
    return dict(fs.storage_options) if fs is not None and store.backend.protocol == "s3" else None


def test_a_remote_filesystem_is_opened_without_a_listing_cache_unless_it_takes_no_such_option():
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    from plait.storage.urls import open_backend

    class Remote(MemoryFileSystem):
        protocol = "remotelike"
        cachable = False

    class NoOptions(MemoryFileSystem):
        protocol = "nooptions"
        cachable = False

        def __init__(self) -> None:  # a filesystem that accepts no storage options at all
            super().__init__()

    fsspec.register_implementation("remotelike", Remote, clobber=True)
    fsspec.register_implementation("nooptions", NoOptions, clobber=True)
    assert open_backend("remotelike://store").fs.dircache.use_listings_cache is False  # lists afresh every time
    assert open_backend("remotelike://store", {"use_listings_cache": True}).fs.dircache.use_listings_cache is True
    assert isinstance(open_backend("nooptions://store").fs, NoOptions)  # opened, not a TypeError
