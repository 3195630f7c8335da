"""The stat cache: re-logging unchanged files reads none of them; a touched, resized or
replaced file is hashed again; without the cache everything is hashed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from settle import rewrite_within_one_tick, settle

import plait
from plait.index.statcache import NoStatCache, StatCache, now_settled
from plait.storage.digest import FileDigest, digest_file, stat_key
from plait.store import publish


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> plait.Store:
    """A format-1 store (flat manifests) on each backend: this file covers that path; the tree's
    own reuse of unchanged folders is in tests/store/test_trees.py."""
    import uuid

    url = str(tmp_path / "store") if request.param == "file" else f"memory://plait-test-{uuid.uuid4().hex[:8]}"
    return plait.Store(url, format=1)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file publish hashes (the real digest_file still runs)."""
    seen: list[str] = []

    def spy(path: str, *args, **kwargs) -> FileDigest:
        seen.append(os.path.basename(path))
        return digest_file(path, *args, **kwargs)

    monkeypatch.setattr(publish, "digest_file", spy)
    return seen


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for i in range(5):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"f{i}.bin").write_bytes(os.urandom(2000))
    settle(root)
    return root


#: Trust every stat: for tests of the cache's rows, not of when a file has settled.
ANY_MTIME = 2**63 - 1


def test_remember_and_lookup_round_trip_with_chunks(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "c" / "stat.sqlite")
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"a")
    b.write_bytes(b"bcd")
    fa = FileDigest("0" * 32, 1)
    fb = FileDigest("1" * 32, 3, (("2" * 32, 1), ("3" * 32, 2)))
    cache.remember([(str(a), stat_key(a.stat()), fa), (str(b), stat_key(b.stat()), fb)], settled=ANY_MTIME)
    got = StatCache(tmp_path / "c" / "stat.sqlite").lookup([(str(a), stat_key(a.stat())), (str(b), stat_key(b.stat()))])
    assert got == {str(a): fa, str(b): fb}


def test_a_changed_size_mtime_or_inode_misses(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat.sqlite")
    path = tmp_path / "a"
    path.write_bytes(b"abc")
    key = stat_key(path.stat())
    cache.remember([(str(path), key, FileDigest("0" * 32, 3))], settled=ANY_MTIME)
    for changed in ((key[0] + 1, key[1], key[2]), (key[0], key[1] + 1, key[2]), (key[0], key[1], key[2] + 1)):
        assert cache.lookup([(str(path), changed)]) == {}
    assert NoStatCache().lookup([(str(path), key)]) == {}


@pytest.mark.usefixtures("slow_to_settle")
def test_a_file_changed_after_the_settled_mark_is_not_remembered(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat.sqlite")
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    settle(old)
    keys = {str(p): stat_key(p.stat()) for p in (old, new)}
    cache.remember([(path, key, FileDigest("0" * 32, 3)) for path, key in keys.items()], settled=now_settled())
    assert set(cache.lookup(keys.items())) == {str(old)}


def test_relogging_an_unchanged_folder_reads_no_file(store: plait.Store, folder: Path, hashed: list[str]) -> None:
    first = store.log(str(folder), name="data")
    assert sorted(hashed) == [f"f{i}.bin" for i in range(5)]
    hashed.clear()
    again = store.log(str(folder), name="data")
    assert hashed == []
    assert (again.number, again.digest) == (first.number, first.digest)


def test_a_touched_file_is_hashed_again_and_only_it(store: plait.Store, folder: Path, hashed: list[str]) -> None:
    first = store.log(str(folder), name="data")
    hashed.clear()
    target = folder / "d0" / "f2.bin"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    again = store.log(str(folder), name="data")
    assert hashed == ["f2.bin"]
    assert again.digest == first.digest  # same bytes: same version
    target.write_bytes(os.urandom(2000))
    hashed.clear()
    changed = store.log(str(folder), name="data")
    assert hashed == ["f2.bin"] and changed.number == first.number + 1


@pytest.mark.usefixtures("slow_to_settle")
def test_a_file_rewritten_within_one_clock_tick_of_its_log_is_read_again(store: plait.Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("one")
    first = store.log(str(data), name="ds")
    rewrite_within_one_tick(data / "a.txt", b"two")  # same size, same mtime: only the bytes differ
    second = store.log(str(data), name="ds")
    assert (first.spec, second.spec) == ("ds:v0", "ds:v1") and second.read_bytes("a.txt") == b"two"


@pytest.mark.usefixtures("slow_to_settle")
def test_a_file_just_written_is_remembered_once_it_has_settled(store: plait.Store, folder: Path, hashed: list[str]) -> None:
    fresh = folder / "d0" / "fresh.bin"
    fresh.write_bytes(b"fresh")
    store.log(str(folder), name="data")
    hashed.clear()
    store.log(str(folder), name="data")
    assert hashed == ["fresh.bin"]  # the five settled files from the cache; no signature for the tree
    settle(fresh)
    store.log(str(folder), name="data")
    hashed.clear()
    store.log(str(folder), name="data")
    assert hashed == []


def test_a_relog_of_a_live_manifest_does_not_ask_the_store_for_each_blob(store: plait.Store, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.log(str(folder), name="data")
    asked: list[int] = []
    real = store.blobs.missing
    monkeypatch.setattr(store.blobs, "missing", lambda digests: asked.append(1) or real(digests))
    store.log(str(folder), name="data")
    assert asked == []
    (folder / "d1" / "new.bin").write_bytes(b"new")
    store.log(str(folder), name="data")
    assert asked == [1]


def test_without_the_cache_every_file_is_hashed(store: plait.Store, folder: Path, hashed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_NO_STAT_CACHE", "1")
    fresh = plait.Store(store.url, format=1) if "://" not in store.url else store
    fresh._stat_cache = None
    fresh.log(str(folder), name="data")
    hashed.clear()
    fresh.log(str(folder), name="data")
    assert len(hashed) == 5


@pytest.fixture
def looked_up(store: plait.Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the files the stat cache is asked about (per-file lookups)."""
    asked: list[int] = []
    real = store.stat_cache.lookup

    def spy(items):
        items = list(items)
        asked.append(len(items))
        return real(items)

    monkeypatch.setattr(store.stat_cache, "lookup", spy)
    return asked


def test_relogging_an_unchanged_tree_looks_up_one_signature_not_each_file(
        store: plait.Store, folder: Path, looked_up: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    first = store.log(str(folder), name="data")
    assert looked_up == [5]
    built: list[int] = []
    real = publish.build_manifest
    monkeypatch.setattr(publish, "build_manifest", lambda *a, **k: built.append(1) or real(*a, **k))
    again = store.log(str(folder), name="data")
    assert looked_up == [5] and built == []  # no per-file lookup, no manifest built
    assert (again.number, again.digest) == (first.number, first.digest)


def test_a_changed_stat_or_layout_misses_the_tree_signature(store: plait.Store, folder: Path, looked_up: list[int]) -> None:
    first = store.log(str(folder), name="data")
    target = folder / "d0" / "f2.bin"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert store.log(str(folder), name="data").digest == first.digest
    assert looked_up == [5, 5]  # the touched tree is checked file by file again
    renamed = plait.Artifact("data").add_dir(str(folder), prefix="under")
    moved = store.log(renamed)
    assert looked_up == [5, 5, 5] and moved.number == first.number + 1


def test_a_revert_is_found_by_its_signature_and_becomes_latest_again(store: plait.Store, folder: Path, looked_up: list[int]) -> None:
    first = store.log(str(folder), name="data")
    other = folder.parent / "other.txt"
    other.write_text("other")
    store.log(str(other), name="data")  # latest is now something else
    back = store.log(str(folder), name="data")
    assert (back.number, back.digest) == (first.number, first.digest)
    assert looked_up == [5, 1]  # the tree's signature named a live version of the name: no file looked up
    assert store.get("data:latest").number == first.number


def test_bytes_and_references_are_never_covered_by_a_signature(folder: Path) -> None:
    from plait.store.publish import stat_files, tree_signature

    settled = now_settled()
    files = plait.Artifact("data").add_dir(str(folder))
    assert tree_signature(files, stat_files(files), "xxh3-128", settled) is not None
    mixed = plait.Artifact("data").add_dir(str(folder)).add_bytes(b"x", "x.bin")
    assert tree_signature(mixed, stat_files(mixed), "xxh3-128", settled) is None
    assert tree_signature(plait.Artifact("empty"), {}, "xxh3-128", settled) is None


def test_threads_opening_a_new_cache_at_once_all_get_in(tmp_path: Path) -> None:
    """The first connections to a new file race to switch it to WAL; none of them fails."""
    failures: list[BaseException] = []
    for trial in range(40):
        cache = StatCache(tmp_path / str(trial) / "stat.sqlite")
        start = threading.Barrier(6)

        def remember(i: int, cache: StatCache = cache, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                cache.remember([(f"f{i}", (1, 2, 3), FileDigest("ab" * 16, 2, None))], settled=ANY_MTIME)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=remember, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(cache.lookup([(f"f{i}", (1, 2, 3)) for i in range(6)])) == {f"f{i}" for i in range(6)}
    assert failures == []
