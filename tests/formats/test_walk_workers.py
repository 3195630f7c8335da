"""A large walk lists its folders in worker processes: the same listings as in one process, the
same rules (symlinks, stores inside, removals, merged folders), the same errors, and a worker
that dies costs nothing but speed."""

from __future__ import annotations

import errno
import os
import re
from array import array
from pathlib import Path

import pytest
from settle import settle

from plait import Artifact, SourceError, Store
from plait.formats import scanpool, walk
from plait.formats.artifact import BytesSource
from plait.formats.walk import DirSource, DraftWalk
from plait.store import treestream


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[scanpool.ScanPool]:
    """Make every walk start its worker processes at once; collect the pools started."""
    started: list[scanpool.ScanPool] = []
    real = scanpool.ScanPool.start.__func__  # type: ignore[attr-defined]

    def start(cls, count: int):
        pool = real(cls, count)
        started.append(pool)
        return pool

    monkeypatch.setattr(walk, "WORKERS_FROM", 0)
    monkeypatch.setattr(walk, "usable_cores", lambda: 2)
    monkeypatch.setattr(scanpool.ScanPool, "start", classmethod(start))
    return started


def listings(walked) -> list[tuple]:
    """Each folder walked, as plain values: its path, its groups (local folder, names, stats), its subfolders."""
    return [(one.path, [(g.local, list(g.names), list(g.stats)) for g in one.groups], one.subfolders) for one in walked]


def varied_tree(root: Path) -> tuple[Path, Path]:
    """A tree with all a walk meets: nested folders, links to a file and a folder inside it, a
    dangling link, a pipe, a store inside it, and a second folder merged at a prefix."""
    for f in range(30):
        sub = root / "data" / f"d{f:02d}"
        (sub / "inner").mkdir(parents=True)
        for i in range(5):
            (sub / f"f{i}.bin").write_bytes(f"{f}-{i}".encode())
        (sub / "inner" / "deep.txt").write_text(f"deep {f}")
    data = root / "data"
    os.symlink(data / "d00" / "f0.bin", data / "d01" / "link-to-file")
    os.symlink(data / "d02", data / "d03" / "link-to-folder")
    os.symlink(data / "nowhere", data / "d04" / "dangling")
    os.mkfifo(data / "d05" / "a-pipe")
    inner_store = data / "d06" / "store"
    (inner_store / "versions").mkdir(parents=True)
    (inner_store / "plait.json").write_text("{}")
    extra = root / "extra"
    (extra / "d00").mkdir(parents=True)
    (extra / "d00" / "f0.bin").write_bytes(b"wins")
    (extra / "d00" / "only-here.bin").write_bytes(b"new")
    return data, extra


def test_worker_processes_list_exactly_what_one_process_lists(tmp_path: Path, pools) -> None:
    data, extra = varied_tree(tmp_path)
    dirs = [DirSource("", str(data), removed=frozenset({"d07/f1.bin", "d08"})), DirSource("d00", str(extra / "d00"))]
    added = {"d09/named.bin": BytesSource("d09/named.bin", b"named"), "d09/f2.bin": BytesSource("d09/f2.bin", b"wins")}
    one_process = listings(DraftWalk(dirs, added, prefetch=False))
    assert pools == []
    in_workers = listings(DraftWalk(dirs, added))
    assert len(pools) == 1 and len(pools[0].processes) == 2
    assert in_workers == one_process
    by_path = {path: groups for path, groups, _ in in_workers}
    assert "link-to-file" in by_path["d01"][0][1] and "a-pipe" not in by_path["d05"][0][1]
    assert "f0.bin" in by_path["d03/link-to-folder"][0][1] and by_path["d06/store"] == [] and "d08" not in by_path
    assert "f1.bin" not in by_path["d07"][0][1] and "f2.bin" not in by_path["d09"][0][1]
    (first, first_names, _), (second, second_names, _) = by_path["d00"]
    assert (first, second) == (str(data / "d00"), str(extra / "d00"))
    assert "f0.bin" not in first_names and sorted(second_names) == ["f0.bin", "only-here.bin"]


def test_the_workers_are_gone_when_the_walk_ends_or_is_left(tmp_path: Path, pools) -> None:
    data, _ = varied_tree(tmp_path)
    list(DraftWalk([DirSource("", str(data))], {}))
    left = iter(DraftWalk([DirSource("", str(data))], {}))
    next(left)
    left.close()  # a log refused half-way leaves its walk like this
    assert len(pools) == 2
    assert all(proc.poll() is not None for pool in pools for proc in pool.processes)


def test_a_folder_gone_before_a_worker_lists_it_is_one_clear_error(tmp_path: Path, pools) -> None:
    data = tmp_path / "data"
    for f in range(3 * walk.WORKER_PREFETCH):
        (data / f"d{f:02d}").mkdir(parents=True)
        (data / f"d{f:02d}" / "a.bin").write_bytes(b"a")
    walked = iter(DraftWalk([DirSource("", str(data))], {}))
    next(walked)  # the first folder: the last one is not asked for yet (a window ahead, not all)
    last = data / f"d{3 * walk.WORKER_PREFETCH - 1:02d}"
    (last / "a.bin").unlink()
    last.rmdir()
    with pytest.raises(SourceError, match=f"cannot read folder {re.escape(str(last))}: No such file or directory"):
        list(walked)


def test_a_symlink_loop_is_refused_when_workers_list_the_folders(tmp_path: Path, pools) -> None:
    data, _ = varied_tree(tmp_path)
    os.symlink(data, data / "d10" / "back-to-the-top")
    with pytest.raises(SourceError, match="a folder that holds it: a loop"):
        list(DraftWalk([DirSource("", str(data))], {}))


def test_a_worker_that_dies_costs_nothing_but_speed(tmp_path: Path, pools) -> None:
    data, _ = varied_tree(tmp_path)
    expected = listings(DraftWalk([DirSource("", str(data))], {}, prefetch=False))
    walked = iter(DraftWalk([DirSource("", str(data))], {}))
    first = next(walked)
    for proc in pools[0].processes:
        proc.kill()
        proc.wait()
    assert listings([first, *walked]) == expected


def test_a_relog_whose_walk_ran_in_workers_reuses_what_a_walk_in_one_process_stored(
        store: Store, tmp_path: Path, pools, monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = varied_tree(tmp_path)
    settle(data)
    monkeypatch.setattr(walk, "WORKERS_FROM", 10**9)
    v0 = store.log(Artifact("ds").add_dir(data))
    assert pools == []
    monkeypatch.setattr(walk, "WORKERS_FROM", 0)
    built: list[int] = []
    real_run = treestream.TreeStream.run
    monkeypatch.setattr(treestream.TreeStream, "run", lambda self: (real_run(self), built.append(self.built))[0])
    v1 = store.log(Artifact("ds").add_dir(data))
    assert pools and v1.spec == v0.spec and built == [0]  # every folder's signature the same: nothing built


def test_a_pool_asked_far_ahead_reads_replies_first_and_answers_each_request(tmp_path: Path) -> None:
    pool = scanpool.ScanPool.start(2)
    assert pool is not None
    try:
        real = tmp_path / "real"
        real.mkdir()
        (real / "a.bin").write_bytes(b"a")
        missing = str(tmp_path / ("x" * 200))  # long requests: the pipes would fill without the pool reading between
        numbers = [pool.submit(str(real) if i % 2 else f"{missing}-{i}") for i in range(600)]
        replies = [pool.result(n) for n in reversed(numbers)][::-1]
    finally:
        pool.close()
    st = os.stat(real / "a.bin")
    assert all(r[:2] == ("a.bin", array("q", [st.st_ino, 1, st.st_mtime_ns]).tobytes()) for r in replies[1::2])
    assert all(r[0] == errno.ENOENT for r in replies[0::2])


def test_a_folder_of_symlinked_files_lists_the_same_in_workers(tmp_path: Path, pools) -> None:
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshot"  # the layout of a Hugging Face cache
    blobs.mkdir()
    (snapshot / "sub").mkdir(parents=True)
    for i in range(300):
        (blobs / f"b{i}").write_bytes(f"blob {i}".encode())
        os.symlink(blobs / f"b{i}", snapshot / "sub" / f"file-{i}.bin")
    (snapshot / "sub" / "plain.txt").write_text("plain")
    dirs = [DirSource("", str(snapshot), follow_external=True)]
    expected = listings(DraftWalk(dirs, {}, prefetch=False))
    assert listings(DraftWalk(dirs, {})) == expected and pools
    [(_, names, stats)] = next(groups for path, groups, _ in expected if path == "sub")
    assert len(names) == 301 and stats[3 * names.index("file-7.bin") + 1] == len(b"blob 7")


def test_a_walk_taking_over_workers_started_early_lists_exactly_what_one_process_lists(tmp_path: Path, pools) -> None:
    data, _ = varied_tree(tmp_path)  # 30 folders, each with one inside: both levels are sent ahead
    dirs = [DirSource("", str(data), removed=frozenset({"d07/f1.bin", "d08"}))]
    one_process = listings(DraftWalk(dirs, {}, prefetch=False))

    walk.start_listing(str(data))  # what `plait log` does first, before it imports the rest of plait
    assert len(pools) == 1
    early = pools[0]
    top = sorted(p for p in data.iterdir() if p.is_dir() and not p.is_symlink())
    in_walk_order = [str(q) for p in top for q in [p, *sorted(c for c in p.iterdir() if c.is_dir() and not c.is_symlink())]]
    assert list(early._ahead) == in_walk_order  # the first two levels, as the walk meets them

    in_workers = listings(DraftWalk(dirs, {}))

    assert in_workers == one_process
    assert len(pools) == 1  # the walk went on with the early workers, started no others
    assert set(early._ahead) == {str(data / "d08"), str(data / "d08" / "inner")}  # each taken, but the removed folder's
    assert all(proc.poll() is not None for proc in early.processes)  # the walk stopped them


def test_a_small_folder_starts_no_workers_early_and_unused_ones_stop_at_exit(tmp_path: Path, pools) -> None:
    small = tmp_path / "small"
    for f in range(walk.EARLY_FROM_FOLDERS - 1):
        (small / f"d{f:02d}").mkdir(parents=True)
    walk.start_listing(str(small))
    walk.start_listing(str(tmp_path / "gone"))  # removed since `plait log` looked: the walk says so, not this
    assert pools == []

    large = tmp_path / "large"
    for f in range(walk.EARLY_FROM_FOLDERS):
        (large / f"d{f:02d}" / "inner").mkdir(parents=True)
    walk.start_listing(str(large))
    assert len(pools) == 1 and all(proc.poll() is None for proc in pools[0].processes)
    assert list(pools[0]._ahead) == sorted(str(p) for p in large.iterdir())  # many at the top: only the top is sent ahead
    walk._stop_unused()  # at exit, when no walk took them (a log refused before its walk)
    assert all(proc.poll() is not None for proc in pools[0].processes)


def test_plait_log_lists_a_large_folder_with_workers_it_started_before_importing_the_rest(tmp_path: Path, pools) -> None:
    import json

    from click.testing import CliRunner

    from plait.cli import main

    data, _ = varied_tree(tmp_path)
    store = Store(str(tmp_path / "store")).init()
    result = CliRunner().invoke(main, ["--store", store.url, "--json", "log", str(data), "--name", "ds"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert len(pools) == 1 and str(data) not in walk._started  # started by the command, taken over by its walk
    assert all(proc.poll() is not None for proc in pools[0].processes)
    logged_from_python = Artifact("ds").add_dir(data)
    assert json.loads(result.output)["digest"] == Store(str(tmp_path / "other")).init().log(logged_from_python).digest
