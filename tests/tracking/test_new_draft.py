"""Incremental versions: ``v.new_draft()`` holds a version's files by digest, and logging it reads
and stores only what changed (one changed image in a large dataset costs that image)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import plait
from plait.errors import InvalidInputError, NotFoundError

FILES = 40
SIZE = 1 << 20  # 40 MiB in all: a read of the version would show at once


def _io() -> tuple[int, int]:
    """Bytes this process has read and written through system calls so far (files and sockets)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"]), int(fields["wchar"])


@pytest.fixture
def big(any_store, tmp_path: Path):
    """``images:v0``: 40 files of 1 MiB, logged from a folder that is then deleted (nothing local to read)."""
    folder = tmp_path / "images"
    for i in range(FILES):
        (folder / f"part{i // 10}").mkdir(parents=True, exist_ok=True)
        (folder / f"part{i // 10}" / f"{i}.png").write_bytes(os.urandom(SIZE))
    v0 = any_store.log(str(folder), name="images", metadata={"source": "lab"}, description="scans")
    for path in folder.rglob("*.png"):
        path.unlink()
    return v0


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts bytes with /proc/self/io (Linux)")
def test_one_changed_file_in_a_large_version_reads_and_stores_only_that_file(big, any_store, listing, tmp_path):
    changed = tmp_path / "new.png"
    changed.write_bytes(os.urandom(SIZE))
    before = listing(any_store)
    read0, written0 = _io()
    draft = big.new_draft()
    draft.add_file(changed, name="part1/12.png")
    draft.remove("part3/39.png")
    v1 = plait.log(draft, store=any_store)
    read, written = _io()[0] - read0, _io()[1] - written0
    # the new file is read twice (hashed, then copied into the store) and crosses a socket on S3:
    # far below one more of the 40 MiB the version holds
    assert read < 4 * SIZE and written < 2 * SIZE, (read, written)
    added = {k: n for k, n in listing(any_store).items() if k not in before and k.startswith(("blobs/", "packs/"))}
    # the new file, in a pack beside the nodes on its path (a loose blob in a format-1 store)
    assert SIZE <= sum(added.values()) < SIZE + (64 << 10) and len(added) <= 2, added
    assert v1.spec == "images:v1" and v1.file_count == FILES - 1
    assert v1.metadata == {"source": "lab"} and v1.description == "scans"
    assert v1.read_bytes("part1/12.png") == changed.read_bytes()
    assert v1.entry("part0/3.png").digest == big.entry("part0/3.png").digest
    d = plait.diff(big, v1)
    assert [m[0] for m in d.modified] == ["part1/12.png"] and [r[0] for r in d.removed] == ["part3/39.png"]
    assert v1.verify() == []


def test_a_draft_changes_only_itself(any_store, make_files):
    v0 = any_store.log(str(make_files({"a.txt": "a", "b/c.txt": "c", "b/d.txt": "d"})), name="ds", metadata={"k": [1]})
    draft = v0.new_draft()
    draft.metadata["k"].append(2)
    draft.remove("b").add_bytes(b"e", "e.txt")
    assert [s.path for s in draft.sources] == ["a.txt", "e.txt"]
    assert v0.refresh().metadata == {"k": [1]}
    v1 = any_store.log(draft)
    assert [e.path for e in v1.files()] == ["a.txt", "e.txt"] and v1.metadata == {"k": [1, 2]}
    assert any_store.log(v0.new_draft()) == v0  # unchanged: the same version, no copy


def test_bad_drafts_are_refused_and_store_nothing(any_store, make_files, listing, tmp_path):
    v0 = any_store.log(str(make_files({"a.txt": "a"})), name="ds")
    draft = v0.new_draft()
    with pytest.raises(NotFoundError, match="no file or folder 'nope'"):
        draft.remove("nope")
    other = plait.Store(str(tmp_path / "other"))
    before = listing(other)
    with pytest.raises(InvalidInputError, match="from another store"):
        other.log(draft.add_bytes(b"x", "x.txt"))
    assert listing(other) == before
    any_store.log(str(make_files({"b.txt": "b"}, "two")), name="ds")
    v0.delete()
    with pytest.raises(NotFoundError, match="ds:v0 has been deleted"):
        v0.new_draft()


def test_a_draft_whose_files_gc_took_is_refused(store, make_files, listing):
    v0 = store.log(str(make_files({"a.txt": "only here"})), name="ds")
    draft = v0.new_draft().add_bytes(b"x", "x.txt")
    store.log(str(make_files({"b.txt": "b"}, "two")), name="ds")
    v0.delete()
    store.gc(dry_run=False, grace_seconds=0)
    store.gc(dry_run=False, grace_seconds=0)
    before = listing(store)
    with pytest.raises(NotFoundError, match="ds:v0 was deleted and gc removed 1 of the files"):
        store.log(draft)
    assert {k for k in listing(store) if k.startswith("versions/")} == {k for k in before if k.startswith("versions/")}


def test_cli_log_onto_a_version(fresh_cli, make_files, tmp_path):
    fresh_cli("log", str(make_files({"a.txt": "a", "b/c.txt": "c", "b/d.txt": "d"})), "--name", "ds")
    new = tmp_path / "c.txt"
    new.write_text("c2")
    out = json.loads(fresh_cli("log", str(new), "--name", "ds", "--onto", "ds:v0", "--prefix", "b",
                               "--remove", "b/d.txt", json_out=True).output)
    assert out["version"] == "v1" and out["created"] is True
    v1 = fresh_cli.store.get("ds:v1")
    assert [e.path for e in v1.files()] == ["a.txt", "b/c.txt"] and v1.read_bytes("b/c.txt") == b"c2"
    result = fresh_cli("log", str(new), "--name", "ds", "--onto", "ds:v0", "--remove", "zz", code=3)
    assert "no file or folder 'zz'" in result.stderr and "Traceback" not in result.output
    result = fresh_cli("log", str(new), "--name", "ds", "--prefix", "b", code=2)
    assert "--prefix and --remove go with --onto" in result.stderr
