"""gc is mark-and-sweep: a blob a log reuses (deduplicates against) survives any gc that runs
between the log's blob check and its version record, because gc deletes only what an earlier gc
marked at least a grace period ago, and a writer touches marked blobs it reuses."""

from __future__ import annotations

import json
import os
import threading
import time
import zlib

import pytest
from blobview import Blobs
from click.testing import CliRunner
from settle import backdate

import plait
from plait.cli import main
from plait.storage.digest import hash_bytes
from plait.store.marks import read_marks

GRACE = 0.4
HOUR = 3600


@pytest.fixture(params=["file-1", "memory-1", "file-2", "memory-2"])
def store(request: pytest.FixtureRequest, tmp_path):
    """A store of each format: format 1 touches the marked loose blobs a writer reuses, format 2
    writes them again into a pack of its own (a tree's own marks: tests/store/test_trees.py)."""
    import uuid

    kind, form = request.param.split("-")
    url = str(tmp_path / "store") if kind == "file" else f"memory://plait-test-{uuid.uuid4().hex[:8]}"
    return plait.Store(url, format=int(form))


def _age() -> None:
    time.sleep(GRACE + 0.15)


class PausedWriter:
    """Log ``data`` as ``name`` from a thread, paused inside ``Store.<method>`` (only that thread)."""

    def __init__(self, monkeypatch, url: str, method: str, data: bytes, name: str) -> None:
        self.store = plait.Store(url)
        self.reached, self.release = threading.Event(), threading.Event()
        real = getattr(plait.Store, method)

        def gated(store, *args, **kwargs):
            if threading.current_thread() is self.thread:
                self.reached.set()
                assert self.release.wait(20)
            return real(store, *args, **kwargs)

        monkeypatch.setattr(plait.Store, method, gated)
        self.result: list = []
        self.thread = threading.Thread(target=self._log, args=(data, name))
        self.thread.start()
        while not self.reached.wait(0.05):
            assert self.thread.is_alive(), self.result

    def _log(self, data: bytes, name: str) -> None:
        try:
            self.result.append(self.store.log(data, name=name))
        except Exception as exc:  # reported by the test thread
            self.result.append(exc)
            raise

    def finish(self) -> plait.ArtifactVersion:
        self.release.set()
        self.thread.join(20)
        assert isinstance(self.result[0], plait.ArtifactVersion), self.result
        return self.result[0]


def _orphan(store, data: bytes, name: str) -> tuple[str, str]:
    """Log ``data`` and delete the version: return its (now unreferenced) blob and manifest."""
    v = store.log(data, name=name)
    store.delete(f"{name}:v0", force=True)
    return v.entry(name).digest, v.digest


def _as_blobs(store, blobs: list[str], manifest: str) -> tuple[list[str], list[str]]:
    """Return what gc lists for ``blobs`` and a version's manifest: ``(blobs, manifests)`` (in a
    format-2 store the manifest is the tree's root node, a blob)."""
    if store.format == 1:
        return sorted(blobs), [manifest]
    return sorted([*blobs, manifest]), []


def test_a_gc_during_a_log_that_reuses_an_old_blob_only_marks_it(store, monkeypatch):
    shared, old_manifest = _orphan(store, b"shared bytes", "old")
    _age()
    writer = PausedWriter(monkeypatch, store.url, "create_or_find_version", b"shared bytes", "new")  # found the blob: no upload
    report = store.gc(dry_run=False, grace_seconds=GRACE)
    assert report.blobs == [] and sorted(report.marked_blobs) == _as_blobs(store, [shared], old_manifest)[0]
    assert report.deletable_after
    assert store.blobs.has(shared)
    version = writer.finish()
    _age()
    later = plait.Store(store.url).gc(dry_run=False, grace_seconds=GRACE)
    assert later.blobs == ([] if store.format == 1 else [old_manifest])  # the old tree's root is dead
    assert store.blobs.read(shared) == b"shared bytes"
    assert version.read_bytes("new") == b"shared bytes" and plait.Store(store.url).verify().ok


def test_a_sweep_between_a_reusing_writer_and_its_version_keeps_the_blob(store, monkeypatch):
    shared, old_manifest = _orphan(store, b"shared bytes", "old")
    dead = store.blobs.put_bytes(b"truly dead")
    store.blobs.commit()
    _age()
    first = store.gc(dry_run=False, grace_seconds=GRACE)
    assert (sorted(first.marked_blobs), first.marked_manifests) == _as_blobs(store, [shared, dead], old_manifest)
    _age()  # the mark is ripe: the next gc may delete what it lists
    writer = PausedWriter(monkeypatch, store.url, "create_or_find_version", b"shared bytes", "new")
    sweep = store.gc(dry_run=False, grace_seconds=GRACE)
    assert (sorted(sweep.blobs), sweep.manifests) == _as_blobs(store, [dead], old_manifest)
    assert sweep.bytes == len(b"truly dead") + (0 if store.format == 1 else store.manifest(old_manifest).root.raw_size)
    # touched since its mark, so kept: counted young, or (on a machine slow enough that the touch
    # is already a grace old when the sweep looks) marked afresh; never deleted
    assert store.blobs.has(shared) and dead not in Blobs.stored(store)
    version = writer.finish()
    assert version.read_bytes("new") == b"shared bytes"
    _age()
    last = plait.Store(store.url).gc(dry_run=False, grace_seconds=GRACE)
    assert last.blobs == [] and last.marks_removed == 1  # the first mark: its sweep is a grace old
    fresh = plait.Store(store.url)
    assert fresh.verify().ok and fresh.get("new:v0").read_bytes("new") == b"shared bytes"


def test_a_writer_whose_reused_blob_was_swept_stores_it_again(store, monkeypatch):
    if store.format == 2:
        pytest.skip("pauses in put_manifest, which a tree's log does not call: see test_trees' sweep tests")
    shared, _ = _orphan(store, b"shared bytes", "old")
    _age()
    store.gc(dry_run=False, grace_seconds=GRACE)
    _age()
    writer = PausedWriter(monkeypatch, store.url, "put_manifest", b"shared bytes", "new")  # blobs checked, not yet protected
    assert store.gc(dry_run=False, grace_seconds=GRACE).blobs == [shared]
    assert shared not in Blobs.stored(store)
    version = writer.finish()
    assert store.blobs.read(shared) == b"shared bytes"
    assert version.read_bytes("new") == b"shared bytes" and plait.Store(store.url).verify().ok


def test_a_mark_is_one_compressed_record_listing_digests(file_store):
    digests = [file_store.blobs.put_bytes(f"garbage {i}".encode()) for i in range(200)]
    file_store.blobs.commit()
    for prefix in ("packs", "blobs"):  # old garbage, and a mark that stays young however slow this machine is
        backdate(file_store, prefix)
    report = file_store.gc(dry_run=False, grace_seconds=HOUR)
    (mark,) = read_marks(file_store)
    raw = file_store.backend.read(mark.key)
    assert mark.key.startswith("gc/") and mark.blobs == frozenset(digests) == frozenset(report.marked_blobs)
    assert len(raw) < len(zlib.decompress(raw)) and report.marked_bytes == sum(len(f"garbage {i}") for i in range(200))
    assert hash_bytes(b"garbage 0", file_store.algorithm) in mark.blobs
    assert file_store.gc(grace_seconds=HOUR).marked_blobs  # a dry run reports, writes no mark
    assert len(read_marks(file_store)) == 1


def test_cli_gc_reports_deleted_marked_and_young(file_store):
    file_store.init()
    file_store.blobs.put_bytes(b"old garbage")
    file_store.blobs.commit()
    _age()
    digest = file_store.blobs.put_bytes(b"young garbage")
    file_store.blobs.commit()  # a pack of its own on format 2
    young = file_store.backend.local_path(Blobs.where(file_store, digest)[0])
    later = time.time() + 3600
    os.utime(young, (later, later))  # young however long this machine takes to get to the gc
    runner = CliRunner()
    out = runner.invoke(main, ["--store", file_store.url, "gc", "--delete", "--grace", str(GRACE)])
    assert out.exit_code == 0, out.output
    assert "freed 0 B in 0 blobs and 0 manifests" in out.output
    assert "marked 1 blobs (11 B) and 0 manifests: a gc after " in out.output and "deletes them" in out.output
    assert "kept 1 younger than 0.4s" in out.output
    os.utime(young)  # written now, after all
    _age()
    out = runner.invoke(main, ["--json", "--store", file_store.url, "gc", "--delete", "--grace", str(GRACE)])
    data = json.loads(out.output)
    assert data["blobs"] == 1 and data["bytes"] == 11 and data["marked_blobs"] == 1 and data["kept_young"] == 0
