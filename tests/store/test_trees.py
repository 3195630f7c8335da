"""Format-2 stores keep each version as a tree of nodes: a version costs what changed."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from blobview import Blobs
from settle import backdate, rewrite_within_one_tick, settle

import plait
from plait.errors import CorruptRecordError, IntegrityError
from plait.formats.tree import FOLDER, decode_node
from plait.formats.treeview import TreeManifest
from plait.ops.packgc import delete_packs
from plait.store.treebuild import REMEMBER_FILES_FROM


def dataset(root: Path, folders: int = 5, files: int = 4) -> Path:
    for f in range(folders):
        for i in range(files):
            path = root / f"d{f}" / f"f{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{f}-{i}")
    (root / "top.txt").write_text("top")
    settle(root)
    return root


def blob_keys(store) -> set[str]:
    """The blobs stored, file contents and tree nodes, by the names format 1 would give them."""
    return set(Blobs.keys(store, nodes=True))


def test_a_new_store_is_format_2_and_keeps_a_tree_per_version(store, tmp_path: Path) -> None:
    v = store.log(plait.Artifact("ds").add_dir(dataset(tmp_path / "data")))
    assert json.loads(store.backend.read("plait.json"))["format"] == 2
    assert isinstance(v.manifest, TreeManifest) and v.digest == v.manifest.digest
    assert store.backend.find("manifests") == {}
    root = decode_node(store.blobs.read(v.digest), v.digest)
    assert root.names == ["d0", "d1", "d2", "d3", "d4", "top.txt"]
    assert [root.kinds[i] == FOLDER for i in range(6)] == [True] * 5 + [False]
    assert len(v.files()) == 21 and v.file_count == 21 and v.size == sum(e.size for e in v.files())
    assert v.read_bytes("d3/f2.txt") == b"3-2"


def test_a_relog_with_one_changed_file_writes_that_file_and_the_nodes_on_its_path(file_store, tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    v0 = file_store.log(plait.Artifact("ds").add_dir(data))
    before = blob_keys(file_store)
    assert file_store.log(plait.Artifact("ds").add_dir(data)).spec == "ds:v0"
    assert blob_keys(file_store) == before
    (data / "d2" / "f1.txt").write_text("changed")
    v1 = file_store.log(plait.Artifact("ds").add_dir(data))
    new = blob_keys(file_store) - before
    assert len(new) == 3  # the file, its folder's node, the root
    assert v1.spec == "ds:v1" and v1.read_bytes("d2/f1.txt") == b"changed"
    diff = plait.diff(v0, v1)
    assert [p for p, _, _ in diff.modified] == ["d2/f1.txt"] and diff.unchanged == 20


def test_a_relog_reuses_unchanged_folders_without_reading_their_files(file_store, tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    file_store.log(plait.Artifact("ds").add_dir(data))
    (data / "d1" / "f0.txt").write_text("new")
    os.chmod(data / "d4" / "f3.txt", 0)  # unreadable: a log that opened it would fail
    try:
        v = file_store.log(plait.Artifact("ds").add_dir(data))
    finally:
        os.chmod(data / "d4" / "f3.txt", 0o644)
    assert v.spec == "ds:v1" and v.read_bytes("d1/f0.txt") == b"new"


def test_logging_equal_content_from_another_folder_returns_the_version(store, tmp_path: Path) -> None:
    v = store.log(plait.Artifact("ds").add_dir(dataset(tmp_path / "a")))
    again = store.log(plait.Artifact("ds").add_dir(dataset(tmp_path / "b")))
    assert again.spec == v.spec


def test_diff_of_versions_one_file_apart_reads_the_nodes_on_that_path_only(file_store, tmp_path: Path) -> None:
    data = dataset(tmp_path / "data", folders=30)
    file_store.log(plait.Artifact("ds").add_dir(data))
    (data / "d17" / "f3.txt").write_text("x")
    (data / "d20").joinpath("new.txt").write_text("n")
    file_store.log(plait.Artifact("ds").add_dir(data))
    fresh = plait.Store(file_store.url)
    diff = plait.diff(fresh.get("ds:v0"), fresh.get("ds:v1"))
    assert diff.modified == [("d17/f3.txt", 4, 1)] and diff.added == [("d20/new.txt", 1)]
    assert diff.unchanged == 120
    assert len(fresh._nodes) == 6  # two roots, d17 and d20 in each


def test_diff_lists_every_file_of_an_added_or_removed_folder(store, tmp_path: Path) -> None:
    a = store.log(plait.Artifact("ds").add_bytes(b"1", "x/y/z").add_bytes(b"2", "keep"))
    b = store.log(plait.Artifact("ds").add_bytes(b"3", "w/v").add_bytes(b"2", "keep"))
    diff = plait.diff(a, b)
    assert diff.added == [("w/v", 1)] and diff.removed == [("x/y/z", 1)] and diff.unchanged == 1


def test_a_format_1_store_keeps_flat_manifests_and_a_relog_returns_the_same_version(tmp_path: Path) -> None:
    old = plait.Store(str(tmp_path / "old"), format=1)
    data = dataset(tmp_path / "data")
    v = old.log(plait.Artifact("ds").add_dir(data))
    assert json.loads(old.backend.read("plait.json"))["format"] == 1
    assert len(old.backend.find("manifests")) == 1 and not isinstance(v.manifest, TreeManifest)
    again = plait.Store(str(tmp_path / "old")).log(plait.Artifact("ds").add_dir(data))
    assert again.spec == "ds:v0" and again.digest == v.digest


def test_verify_names_a_damaged_node_with_every_version_that_needs_it(file_store, tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    v0 = file_store.log(plait.Artifact("ds").add_dir(data))
    (data / "top.txt").write_text("changed")
    v1 = file_store.log(plait.Artifact("ds").add_dir(data))
    node = v0.manifest.root.digests[2]  # d2: shared by both versions
    Blobs.flip(file_store, node, at=5)
    report = plait.Store(file_store.url).verify()
    assert sorted((spec, p) for spec, p, d, _ in report.problems if d == node) == [("ds:v0", "d2"), ("ds:v1", "d2")]
    assert plait.Store(file_store.url).get(v1.spec).verify() == ["d2"]


def test_a_download_refuses_a_damaged_node_and_leaves_nothing(file_store, tmp_path: Path) -> None:
    v = file_store.log(plait.Artifact("ds").add_dir(dataset(tmp_path / "data")))
    node = v.manifest.root.digests[4]
    Blobs.flip(file_store, node, at=2)
    with pytest.raises((CorruptRecordError, IntegrityError), match=node):
        plait.Store(file_store.url).get("ds:v0").download(tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_gc_keeps_the_nodes_of_live_versions_and_collects_those_of_deleted_ones(file_store, tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    file_store.log(plait.Artifact("ds").add_dir(data))
    (data / "d0" / "f0.txt").write_text("v1 only")
    v1 = file_store.log(plait.Artifact("ds").add_dir(data))
    v1_nodes = {d for d, _ in v1.manifest.nodes()}
    file_store.delete("ds:v1")
    report = file_store.gc(dry_run=False, grace_seconds=0)
    left = {k.rsplit("/", 1)[-1] for k in blob_keys(file_store)}
    assert len(report.blobs) == 3  # v1's root, its d0 node, its new file
    assert not (v1_nodes - {d for d, _ in file_store.get("ds:v0").manifest.nodes()}) & left
    assert plait.Store(file_store.url).verify().problems == []
    assert file_store.get("ds:v0").read_bytes("d0/f0.txt") == b"0-0"


def test_sync_copies_trees_and_skips_what_the_destination_has(file_store, tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    file_store.log(plait.Artifact("ds").add_dir(data))
    dst = plait.Store(str(tmp_path / "dst"))
    plait.sync(file_store, dst)
    assert json.loads(dst.backend.read("plait.json"))["format"] == 2
    (data / "d0" / "f0.txt").write_text("second")
    file_store.log(plait.Artifact("ds").add_dir(data))
    report = plait.sync(file_store, dst)
    assert report.blobs == 3  # the new file, d0's node, the root
    assert dst.get("ds:v1").read_bytes("d0/f0.txt") == b"second"
    assert dst.verify().problems == []


def test_sync_between_formats_is_refused_in_one_line(file_store, tmp_path: Path) -> None:
    file_store.log(plait.Artifact("ds").add_bytes(b"x", "a"))
    old = plait.Store(str(tmp_path / "old"), format=1).init()
    with pytest.raises(plait.StoreError, match="format 2 store but .* format 1"):
        plait.sync(file_store, old)


def test_a_path_that_is_both_a_file_and_a_folder_is_refused(store) -> None:
    draft = plait.Artifact("ds").add_bytes(b"1", "a").add_bytes(b"2", "a/b")
    with pytest.raises(plait.InvalidPathError, match="both a file and a folder"):
        store.log(draft)


def test_a_flat_list_of_stored_entries_becomes_the_same_tree_a_log_makes(store, tmp_path: Path) -> None:
    from plait.store.treebuild import store_entries

    v = store.log(plait.Artifact("ds").add_dir(dataset(tmp_path / "data")))
    assert store_entries(store, list(v.files())).digest == v.digest


def hostile_version(store, node: bytes) -> str:
    """Store a crafted root node and a version record pointing at it, as a hostile writer could."""
    from plait.formats import records as R

    digest = store.blobs.put_bytes(node, kind="tree")
    record = store.create_version({"name": "evil", "type": "dataset", "digest": digest, "size": 1,
                                   "file_count": 1, "created_at": "2026-12-01T00:00:00Z"})
    store.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"))
    return f"evil:v{record.number}"


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "/etc/passwd"])
def test_a_node_naming_a_path_out_of_the_folder_is_refused_and_nothing_is_written(store, tmp_path: Path, name: str) -> None:
    from plait.formats.tree import FILE, encode_node

    blob = store.blobs.put_bytes(b"x")
    spec = hostile_version(store, encode_node([(name, FILE, 1, blob, None)], 16))
    with pytest.raises(CorruptRecordError, match="malformed"):
        store.get(spec).download(tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "x").exists()
    problems = store.verify(spec).problems
    assert problems and "malformed" in problems[0][3]


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file a tree log hashes (the real digest_file, or read_small for the small
    files a packed store reads and stores in one pass, still runs)."""
    from plait.storage import packed
    from plait.storage.digest import digest_file, read_small
    from plait.store import treebuild

    seen: list[str] = []

    def spy(path: str, *args, **kwargs):
        seen.append(os.path.relpath(path))
        return digest_file(path, *args, **kwargs)

    def spy_small(path: str, *args, **kwargs):
        seen.append(os.path.relpath(path))
        return read_small(path, *args, **kwargs)

    monkeypatch.setattr(treebuild, "digest_file", spy)
    monkeypatch.setattr(packed, "read_small", spy_small)
    return seen


def test_a_relog_hashes_only_the_files_of_changed_folders_and_asks_the_store_nothing_when_unchanged(
        store, tmp_path: Path, hashed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    data = dataset(tmp_path / "data")
    first = store.log(plait.Artifact("ds").add_dir(data))
    assert len(hashed) == 21
    asked: list[int] = []
    real = store.blobs.missing
    monkeypatch.setattr(store.blobs, "missing", lambda digests: asked.append(1) or real(digests))
    hashed.clear()
    assert store.log(plait.Artifact("ds").add_dir(data)).digest == first.digest
    assert hashed == [] and asked == []
    target = data / "d3" / "f1.txt"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched, same bytes
    assert store.log(plait.Artifact("ds").add_dir(data)).spec == first.spec
    # the small files of the folders on its path are read again (the root's: top.txt)
    assert sorted(hashed) == [f"data/d3/f{i}.txt" for i in range(4)] + ["data/top.txt"]
    hashed.clear()
    assert store.log(plait.Artifact("ds").add_dir(data)).spec == first.spec and hashed == []


def test_a_revert_is_found_by_its_root_signature(store, tmp_path: Path, hashed: list[str]) -> None:
    data = dataset(tmp_path / "data")
    first = store.log(plait.Artifact("ds").add_dir(data))
    store.log(plait.Artifact("ds").add_bytes(b"other", "other.txt"))
    hashed.clear()
    back = store.log(plait.Artifact("ds").add_dir(data))
    assert (back.spec, hashed) == (first.spec, [])
    assert store.get("ds:latest").number == first.number


@pytest.mark.usefixtures("slow_to_settle")
@pytest.mark.parametrize("size", [3, REMEMBER_FILES_FROM], ids=["small", "large"])
def test_a_file_rewritten_within_one_clock_tick_of_its_log_is_read_again(store, tmp_path: Path, size: int) -> None:
    """A small file is covered by its folder's signature, a large one has its own row too."""
    data = dataset(tmp_path / "data")
    target = data / "d3" / "f1.txt"
    target.write_bytes(b"1" * size)
    first = store.log(plait.Artifact("ds").add_dir(data))
    rewrite_within_one_tick(target, b"2" * size)  # same size, same mtime: only the bytes differ
    second = store.log(plait.Artifact("ds").add_dir(data))
    assert (first.spec, second.spec) == ("ds:v0", "ds:v1") and second.read_bytes("d3/f1.txt") == b"2" * size


@pytest.mark.usefixtures("slow_to_settle")
def test_only_folders_whose_files_have_settled_are_remembered(store, tmp_path: Path, hashed: list[str]) -> None:
    data = dataset(tmp_path / "data")
    (data / "d3" / "fresh.txt").write_text("fresh")

    def relog_reads() -> list[str]:
        store.log(plait.Artifact("ds").add_dir(data))
        hashed.clear()
        store.log(plait.Artifact("ds").add_dir(data))
        return sorted(os.path.relpath(os.path.abspath(p), data) for p in hashed)

    # the unsettled folder and the root above it are read again; the other four are reused
    assert relog_reads() == ["d3/f0.txt", "d3/f1.txt", "d3/f2.txt", "d3/f3.txt", "d3/fresh.txt", "top.txt"]
    settle(data / "d3" / "fresh.txt")
    assert relog_reads() == []


def test_a_reused_folder_whose_node_is_gone_is_built_again(file_store, tmp_path: Path, hashed: list[str]) -> None:
    data = dataset(tmp_path / "data")
    v = file_store.log(plait.Artifact("ds").add_dir(data))
    file_store.delete("ds:v0")
    file_store.gc(dry_run=False, grace_seconds=0)
    assert file_store.backend.find("blobs") == {}
    hashed.clear()
    again = plait.Store(file_store.url).log(plait.Artifact("ds").add_dir(data))
    assert len(hashed) == 21 and again.digest == v.digest
    assert plait.Store(file_store.url).verify().problems == []


def test_a_change_in_a_crowded_folder_reads_only_the_changed_file(store, tmp_path: Path, hashed: list[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(300):
        (data / f"f{i:03d}").write_text(str(i))
    settle(data)
    store.log(plait.Artifact("ds").add_dir(data))
    (data / "f123").write_text("changed")
    hashed.clear()
    v = store.log(plait.Artifact("ds").add_dir(data))
    assert (v.spec, hashed) == ("ds:v1", ["data/f123"])


def test_plait_init_creates_a_store_of_either_format(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from plait.cli import main

    for fmt in ("1", "2"):
        out = CliRunner().invoke(main, ["init", str(tmp_path / fmt), "--format", fmt, "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["format"] == int(fmt)
        assert json.loads((tmp_path / fmt / "plait.json").read_text())["format"] == int(fmt)


def test_a_store_of_an_unknown_format_is_refused_in_one_line(tmp_path: Path) -> None:
    store = plait.Store(str(tmp_path / "s")).init()
    body = json.loads(store.backend.read("plait.json"))
    (tmp_path / "s" / "plait.json").write_text(json.dumps({**body, "format": 3}))
    with pytest.raises(plait.StoreError, match="format 3 store; this plait reads formats 1 and 2: upgrade plait"):
        _ = plait.Store(str(tmp_path / "s")).algorithm


def test_a_relog_reusing_folders_a_gc_marked_keeps_them_through_the_sweep(file_store, tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    v0 = file_store.log(plait.Artifact("ds").add_dir(data))
    file_store.delete("ds:v0")
    backdate(file_store, "packs")
    marked = file_store.gc(dry_run=False, grace_seconds=3600)
    assert len(marked.marked_blobs) == 21 + 6  # the files and the tree's nodes
    again = file_store.log(plait.Artifact("ds").add_dir(data))  # every folder from the stat cache
    assert again.digest == v0.digest
    backdate(file_store, "gc")  # the sweep a grace later
    file_store.gc(dry_run=False, grace_seconds=3600)
    fresh = plait.Store(file_store.url)
    assert fresh.verify().problems == []
    assert fresh.get(again.spec).read_bytes("d4/f3.txt") == b"4-3"


def test_a_sweep_while_a_relog_of_marked_folders_waits_to_record_its_version_keeps_them(
        file_store, tmp_path: Path, hashed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    data = dataset(tmp_path / "data")
    v0 = file_store.log(plait.Artifact("ds").add_dir(data))
    file_store.delete("ds:v0")
    dead = file_store.blobs.put_bytes(b"truly dead")
    file_store.blobs.commit()
    backdate(file_store, "packs")
    assert len(file_store.gc(dry_run=False, grace_seconds=3600).marked_blobs) == 21 + 6 + 1
    backdate(file_store, "packs", 900_000_000)
    backdate(file_store, "gc")  # the mark is ripe: the next gc deletes what it lists and nobody touched since
    reached, release, result = threading.Event(), threading.Event(), []
    real = plait.Store.create_or_find_version

    def gated(store, *args, **kwargs):  # the writer stops after protect, before its version record
        if threading.current_thread() is writer:
            reached.set()
            assert release.wait(60)
        return real(store, *args, **kwargs)

    def relog() -> None:
        try:
            result.append(plait.Store(file_store.url).log(plait.Artifact("ds").add_dir(data)))
        except Exception as exc:  # reported by the test's thread
            result.append(exc)

    monkeypatch.setattr(plait.Store, "create_or_find_version", gated)
    hashed.clear()
    writer = threading.Thread(target=relog)
    writer.start()
    while not reached.wait(0.05):
        assert writer.is_alive(), result

    sweep = plait.Store(file_store.url).gc(dry_run=False, grace_seconds=3600)

    assert sweep.blobs == [dead] and sweep.kept_young >= 1  # the writer wrote what it reuses again: a new pack
    release.set()
    writer.join(60)
    again = result[0]
    assert isinstance(again, plait.ArtifactVersion), result
    assert (again.digest, hashed) == (v0.digest, [])  # every folder came from the stat cache
    fresh = plait.Store(file_store.url)
    assert fresh.verify().problems == []
    assert fresh.get(again.spec).read_bytes("d4/f3.txt") == b"4-3"


def test_a_relog_after_a_sweep_took_a_reused_folder_builds_it_again(file_store, tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    v0 = file_store.log(plait.Artifact("ds").add_dir(data))
    d1 = v0.manifest.root.digests[1]
    file_store.delete("ds:v0")
    backdate(file_store, "packs")
    file_store.gc(dry_run=False, grace_seconds=3600)  # a mark: protect will walk the tree
    delete_packs(file_store, {file_store.blobs.locate(d1).pack_id})  # a sweep took the pack of d1's node (as gc does)
    assert d1 not in Blobs.stored(file_store, nodes=True)
    again = plait.Store(file_store.url).log(plait.Artifact("ds").add_dir(data))
    assert again.digest == v0.digest
    assert d1 in Blobs.stored(file_store, nodes=True)
    assert plait.Store(file_store.url).verify().problems == []


def test_diff_inside_a_sharded_folder_reads_only_the_shards_that_differ(file_store, tmp_path: Path) -> None:
    from plait.formats.tree import SHARD_ABOVE

    data = tmp_path / "data"
    (data / "big").mkdir(parents=True)
    for i in range(SHARD_ABOVE * 3):
        (data / "big" / f"f{i:05d}").write_text("x")
    file_store.log(plait.Artifact("ds").add_dir(data))
    (data / "big" / "f03000").write_text("changed")
    (data / "big" / "f03000x").write_text("new")
    file_store.log(plait.Artifact("ds").add_dir(data))
    fresh = plait.Store(file_store.url)
    old, new = fresh.get("ds:v0"), fresh.get("ds:v1")
    big = new.manifest.load(new.manifest.root.digests[0])
    assert big.is_index and len(big) > 3
    diff = plait.diff(old, new)
    assert diff.modified == [("big/f03000", 1, 7)] and diff.added == [("big/f03000x", 3)]
    assert diff.unchanged == SHARD_ABOVE * 3 - 1
    assert len(fresh._nodes) <= 2 * 3 + 1  # roots, index nodes, the shard that changed (the shard beside it at most)


def test_a_relog_with_one_changed_file_asks_the_store_about_no_unchanged_folder(store, tmp_path: Path, monkeypatch) -> None:
    data = dataset(tmp_path / "data", folders=20)
    v0 = store.log(plait.Artifact("ds").add_dir(data))
    root = v0.manifest.root
    unchanged = {root.digests[i] for i in range(len(root)) if root.kinds[i] == FOLDER and root.names[i] != "d7"}
    assert len(unchanged) == 19
    (data / "d7" / "f2.txt").write_text("changed")
    asked: list[str] = []
    real = store.blobs.missing

    def spy(digests):
        digests = list(digests)
        asked.extend(digests)
        return real(digests)

    monkeypatch.setattr(store.blobs, "missing", spy)
    v = store.log(plait.Artifact("ds").add_dir(data))
    assert v.spec == "ds:v1"
    assert not unchanged & set(asked)  # not one of the 19 unchanged folders
    assert len(asked) == 5  # the files of the two folders on the path (d7's four, top.txt); new nodes are appended unasked


def test_on_s3_a_relog_with_one_changed_file_writes_a_handful_of_objects_and_asks_about_none_per_folder(
        s3_store, tmp_path: Path, monkeypatch) -> None:
    data = dataset(tmp_path / "data", folders=30, files=10)
    s3_store.log(plait.Artifact("ds").add_dir(data))
    (data / "d12" / "f3.txt").write_text("changed")
    calls: list[tuple[str, str]] = []
    backend = s3_store.backend
    for method in ("write", "write_file", "create", "exists", "read"):
        real = getattr(backend, method)
        monkeypatch.setattr(backend, method, lambda key, *a, _m=method, _r=real, **k: (calls.append((_m, key)), _r(key, *a, **k))[1])
    v = s3_store.log(plait.Artifact("ds").add_dir(data))
    assert v.spec == "ds:v1"
    puts = {k for m, k in calls if m in ("write", "write_file", "create")}  # write_file goes through write
    assert len([k for k in puts if k.startswith("packs/")]) == 2  # the file; d12's node and the root
    assert len([k for k in puts if k.startswith("index/")]) == 1
    assert len(puts) <= 10
    assert len([k for m, k in calls if m == "exists"]) <= 12  # d12's and the root's files, the new nodes: not per folder
