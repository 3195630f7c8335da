"""A format-2 log streams a draft's folders: the draft holds no list of files, each folder is
signed and, when unchanged, reused by its node; overrides, removals, symlink rules and changes
during the walk all hold."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest
from settle import settle

import plait
from plait import Artifact, FileChangedError, InvalidPathError, NotFoundError, Store
from plait.formats import artifact as artifact_mod
from plait.formats.walk import DirSource
from plait.store import treestream


def tree(root: Path, folders: int, files: int, size: int = 8) -> Path:
    for f in range(folders):
        sub = root / f"d{f:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            (sub / f"f{i:04d}.bin").write_bytes(f"{f}-{i}-".encode().ljust(size, b"."))
    settle(root)
    return root


def contents(version) -> dict[str, bytes]:
    return {e.path: version.read_bytes(e.path) for e in version.files()}


class Counted:
    """Counts the FileSource objects made while it is on (a draft's list of files would make one a file)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made = 0
        real = artifact_mod.FileSource
        counter = self

        class FileSource(real):  # type: ignore[misc, valid-type]
            __slots__ = ()

            def __init__(self, *args, **kwargs) -> None:
                counter.made += 1
                super().__init__(*args, **kwargs)

        for module in (artifact_mod, treestream):
            monkeypatch.setattr(module, "FileSource", FileSource)


def test_a_folder_is_recorded_as_that_folder_not_its_files(tmp_path: Path) -> None:
    data = tree(tmp_path / "data", folders=3, files=50)
    draft = Artifact("ds").add_dir(data, prefix="imgs")
    assert draft.added == []
    assert draft.folders == [DirSource("imgs", str(data))]
    assert "folders=1" in repr(draft)
    assert len(draft.sources) == 150  # the list, for code that needs one, is made by walking on demand
    assert draft.sources[0].path == "imgs/d000/f0000.bin"


def test_an_unchanged_relog_makes_no_file_source_and_writes_nothing(store: Store, tmp_path: Path, listing,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data = tree(tmp_path / "data", folders=10, files=30)
    v0 = store.log(Artifact("ds").add_dir(data))
    before = listing(store)
    counted = Counted(monkeypatch)
    written: list[str] = []
    real_put = store.blobs.put_bytes
    monkeypatch.setattr(store.blobs, "put_bytes", lambda data, kind="data": written.append(kind) or real_put(data, kind))
    monkeypatch.setattr(Artifact, "sources", property(lambda self: pytest.fail("a format-2 log listed the draft's files")))
    assert store.log(Artifact("ds").add_dir(data)).spec == v0.spec
    assert (counted.made, written) == (0, [])
    assert {k: v for k, v in listing(store).items() if not k.startswith("events/")} == \
        {k: v for k, v in before.items() if not k.startswith("events/")}


def test_a_relog_with_one_change_builds_and_writes_only_the_nodes_on_its_path(store: Store, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = tree(tmp_path / "data", folders=20, files=10)
    v0 = store.log(Artifact("ds").add_dir(data))
    (data / "d007" / "f0003.bin").write_bytes(b"changed")
    counted = Counted(monkeypatch)
    nodes: list[bytes] = []
    real_put = store.blobs.put_bytes
    monkeypatch.setattr(store.blobs, "put_bytes", lambda data, kind="data": (nodes.append(data) if kind == "tree" else None)
                        or real_put(data, kind))
    built: list[int] = []
    real_run = treestream.TreeStream.run
    monkeypatch.setattr(treestream.TreeStream, "run", lambda self: (real_run(self), built.append(self.built))[0])
    v1 = store.log(Artifact("ds").add_dir(data))
    assert v1.number == 1 and built == [2] and len(nodes) == 2  # d007 and the root
    assert counted.made <= 2 * 10  # the changed folder's files only (made to hash them, then to build its node)
    diff = plait.diff(v0, v1)
    assert diff.modified == [("d007/f0003.bin", 8, 7)] and not diff.added and not diff.removed
    assert contents(v1)["d007/f0003.bin"] == b"changed"


def test_a_log_holds_one_batch_of_files_at_a_time(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treestream, "BATCH_FILES", 50)
    monkeypatch.setattr(treestream, "COMMIT_FILES", 100)
    peaks = {}
    real_flush = treestream.TreeStream.flush
    for folders in (5, 40):
        data = tree(tmp_path / f"data{folders}", folders=folders, files=25, size=1)
        live: list[int] = []

        def flush(self, real_flush=real_flush, live=live) -> None:
            live.append(len(self.pending))
            real_flush(self)

        monkeypatch.setattr(treestream.TreeStream, "flush", flush)
        tracemalloc.start()
        try:
            v = store.log(Artifact(f"ds{folders}").add_dir(data))
            peaks[folders] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(v.files()) == folders * 25
        assert max(live) <= 3  # folders waiting in a batch: never the whole draft
    assert peaks[40] < 1.5 * peaks[5]  # eight times the files, about the same memory


def test_named_files_and_removals_override_an_added_folder(store: Store, make_files, tmp_path: Path) -> None:
    data = make_files({"a.txt": "a", "sub/b.txt": "b", "sub/c.txt": "c", "gone/x.txt": "x", "gone/deep/y.txt": "y"})
    other = make_files({"sub/b.txt": "other b", "sub/new.txt": "new"}, folder="other")
    extra = tmp_path / "extra.txt"
    extra.write_text("extra")
    draft = (Artifact("ds").add_dir(data).add_bytes(b"bytes win", "a.txt").remove("sub/c.txt").remove("gone")
             .add_file(extra, name="gone/back.txt").add_dir(other))
    expected = {"a.txt": b"bytes win", "gone/back.txt": b"extra", "sub/b.txt": b"other b", "sub/new.txt": b"new"}
    assert [s.path for s in draft.sources] == sorted(expected)
    assert contents(store.log(draft)) == expected
    assert contents(Store(str(tmp_path / "v1"), format=1).log(draft)) == expected  # a flat manifest lists the same
    # a folder added after a file named inside it wins for that path, as any later addition
    later = Artifact("ds").add_bytes(b"early", "sub/b.txt").add_dir(data)
    assert contents(store.log(later))["sub/b.txt"] == b"b"
    with pytest.raises(NotFoundError, match=r"has no file or folder 'sub/zzz' \(it has \./ \(.*data\)"):
        Artifact("ds").add_dir(data).remove("sub/zzz")


def test_a_path_both_a_file_and_a_folder_is_refused(store: Store, make_files, listing) -> None:
    data = make_files({"sub/b.txt": "b"})
    with pytest.raises(InvalidPathError, match="entry 'sub' is both a file and a folder"):
        store.log(Artifact("ds").add_dir(data).add_bytes(b"x", "sub"))
    assert listing(store) == {}


def test_a_file_changed_after_the_walk_found_it_is_refused_and_nothing_recorded(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listing) -> None:
    data = tree(tmp_path / "data", folders=3, files=5)
    real_flush = treestream.TreeStream.flush

    def flush(self) -> None:  # between the walk's stat of every file and the reading of them
        with open(data / "d001" / "f0002.bin", "ab") as f:
            f.write(b"appended")
        real_flush(self)

    monkeypatch.setattr(treestream.TreeStream, "flush", flush)
    with pytest.raises(FileChangedError, match=r"f0002.bin changed while it was being read; log it again"):
        store.log(Artifact("ds").add_dir(data))
    assert not any(k.startswith("versions/") for k in listing(store))
    monkeypatch.setattr(treestream.TreeStream, "flush", real_flush)
    v = store.log(Artifact("ds").add_dir(data))  # logged again once written: the bytes as they are now
    assert contents(v)["d001/f0002.bin"].endswith(b"appended")


def test_a_folder_changed_between_two_logs_of_one_draft_is_listed_afresh(store: Store, tmp_path: Path) -> None:
    data = tree(tmp_path / "data", folders=2, files=3)
    draft = Artifact("ds").add_dir(data)
    v0 = store.log(draft)
    os.unlink(data / "d000" / "f0001.bin")
    (data / "d002").mkdir()
    (data / "d002" / "n.bin").write_bytes(b"n")
    v1 = store.log(draft)
    assert v1.number == 1
    assert sorted(set(contents(v1)) ^ set(contents(v0))) == ["d000/f0001.bin", "d002/n.bin"]


def test_a_folder_the_stat_cache_knows_from_another_store_is_built_here(store: Store, tmp_path: Path) -> None:
    data = tree(tmp_path / "data", folders=4, files=3)
    elsewhere = Store(str(tmp_path / "elsewhere"))
    elsewhere.log(Artifact("ds").add_dir(data))  # the stat cache (one per user) now knows every folder
    (data / "d002" / "f0000.bin").write_bytes(b"changed")
    v = store.log(Artifact("ds").add_dir(data))  # the other three folders' nodes are not in this store
    assert len(v.files()) == 12 and contents(v)["d002/f0000.bin"] == b"changed"
    assert store.verify().ok
    (data / "d002" / "f0000.bin").write_bytes(b"changed again")
    elsewhere.log(Artifact("ds").add_dir(data))
    assert store.log(Artifact("ds").add_dir(data)).number == 1  # the whole root known from there, not here
    assert store.verify().ok
