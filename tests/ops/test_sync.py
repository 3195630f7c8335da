"""plait.sync: only the delta moves, identity is name + digest, lineage and history come along."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import plait
from plait.cli import main
from plait.index import versions as V


def _pipeline(store: plait.Store, folder: Path) -> plait.ArtifactVersion:
    """raw -> prepare -> clean -> train -> model:best, with a note and an alias move."""
    (folder / "raw").mkdir(parents=True)
    for i in range(5):
        (folder / "raw" / f"{i}.txt").write_text(f"row {i}\n" * 50)
    with plait.run("prepare", store=store, config={"split": 0.8}) as run:
        raw = run.use(str(folder / "raw"))
        clean = run.log(b"clean rows", name="clean", aliases=["candidate"])
    with plait.run("train", store=store) as run:
        run.use(clean.spec)
        run.log(b"weights-1", name="model", type="model", aliases=["best"])
        model = run.log(b"weights-2", name="model", type="model", aliases=["best"])
    raw.update(description="the raw rows", metadata={"source": "lab"})
    return model


def _graph(store: plait.Store, spec: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    data = store.lineage(spec).to_dict()
    return sorted(n["id"] for n in data["nodes"]), sorted((e["source"], e["target"], e["kind"]) for e in data["edges"])


def _keys(store: plait.Store) -> dict[str, int]:
    return store.backend.find("")


def test_round_trip_local_s3_local_keeps_the_graph_and_history(tmp_path, s3_store):
    laptop = plait.Store(str(tmp_path / "laptop"))
    model = _pipeline(laptop, tmp_path / "work")

    sent = plait.sync(laptop, s3_store)
    assert {s for s, _ in sent.versions} == {"raw:v0", "clean:v0", "model:v0", "model:v1"}
    assert sent.blobs == len({d for a in laptop.artifacts() for v in laptop.versions(a.name) for d in v.manifest.blobs()})

    home = plait.Store(str(tmp_path / "home"))
    plait.sync(s3_store, home)
    for other in (s3_store, home):
        assert _graph(other, "model:best") == _graph(laptop, model.spec)
        raw = other.get("raw:v0")
        assert raw.description == "the raw rows" and raw.metadata == {"source": "lab"}
        kinds = [h.kind for h in raw.history()]
        assert kinds.count("version.updated") == 1 and "version.logged" in kinds
        assert other.get("model:best").read_bytes(other.get("model:best").files()[0].path) == b"weights-2"
        assert other.get("model:v1").history()[0].time == laptop.get("model:v1").history()[0].time
        assert other.verify().ok


def test_a_second_sync_sends_nothing(tmp_path, s3_store):
    laptop = plait.Store(str(tmp_path / "laptop"))
    _pipeline(laptop, tmp_path / "work")
    plait.sync(laptop, s3_store)
    before = _keys(s3_store)

    again = plait.sync(laptop, s3_store)

    assert again.sent_nothing and again.blobs == 0 and again.events == 0 and again.existing == 4
    assert _keys(s3_store) == before  # not one object written


def test_a_new_version_sends_only_its_new_file(tmp_path):
    src, dst = plait.Store(str(tmp_path / "a")), plait.Store(str(tmp_path / "b"))
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(50):
        (folder / f"{i}.bin").write_bytes(os.urandom(2000))
    src.log(str(folder), name="data")
    plait.sync(src, dst)
    (folder / "7.bin").write_bytes(os.urandom(3000))
    src.log(str(folder), name="data")

    report = plait.sync(src, dst)

    assert report.versions == [("data:v1", "data:v1")]
    root = src.get("data:v1").manifest.root
    assert report.blobs == 2 and report.bytes == 3000 + root.raw_size  # the file and the new root node
    assert report.manifests == 0
    assert dst.get("data:v1").digest == src.get("data:v1").digest


def test_a_new_version_sends_only_its_new_file_between_format_1_stores(tmp_path):
    src, dst = plait.Store(str(tmp_path / "a"), format=1), plait.Store(str(tmp_path / "b"))
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(50):
        (folder / f"{i}.bin").write_bytes(os.urandom(2000))
    src.log(str(folder), name="data")
    plait.sync(src, dst)  # a new destination takes the source's format
    (folder / "7.bin").write_bytes(os.urandom(3000))
    src.log(str(folder), name="data")

    report = plait.sync(src, dst)

    assert dst.format == 1
    assert report.blobs == 1 and report.bytes == 3000 and report.manifests == 1
    assert dst.get("data:v1").digest == src.get("data:v1").digest


def test_versions_made_on_both_sides_get_their_own_numbers_and_alias_conflicts_are_reported(tmp_path):
    a, b = plait.Store(str(tmp_path / "a")), plait.Store(str(tmp_path / "b"))
    a.log(b"shared", name="model", aliases=["best"])
    plait.sync(a, b)
    a.log(b"from a", name="model", aliases=["best"])
    b.log(b"from b", name="model", aliases=["best"])

    to_b = plait.sync(a, b)
    to_a = plait.sync(b, a)

    assert to_b.versions == [("model:v1", "model:v2")] and to_a.versions == [("model:v1", "model:v2")]
    assert b.get("model:v2").read_bytes(b.get("model:v2").files()[0].path) == b"from a"
    assert a.get("model:v2").read_bytes(a.get("model:v2").files()[0].path) == b"from b"
    origin = V.version(b.catalog, "model", 2).origin
    assert origin == {"store": a.id, "number": 1}
    assert b.get("model:best").number == 1 and a.get("model:best").number == 1  # neither side overwritten
    assert len(to_b.conflicts) == 1 and "model:best" in to_b.conflicts[0] and "overwrite" in to_b.conflicts[0]
    assert plait.sync(a, b).sent_nothing and plait.sync(b, a).sent_nothing

    overwritten = plait.sync(a, b, aliases="overwrite")
    assert b.get("model:best").number == 2 and overwritten.events >= 1


def test_one_spec_brings_its_upstream_lineage_only(tmp_path):
    src, dst = plait.Store(str(tmp_path / "a")), plait.Store(str(tmp_path / "b"))
    _pipeline(src, tmp_path / "work")
    src.log(b"unrelated", name="other")

    report = plait.sync(src, dst, ["clean:candidate"])

    assert {s for s, _ in report.versions} == {"raw:v0", "clean:v0"}
    assert [a.name for a in dst.artifacts()] == ["clean", "raw"]
    assert dst.get("clean:candidate").produced_by.name == "prepare"
    assert [v.spec for v in dst.get("clean:v0").produced_by.inputs] == ["raw:v0"]


def test_stores_hashing_differently_are_refused(tmp_path):
    src = plait.Store(str(tmp_path / "a"))
    src.log(b"x", name="x")
    dst = plait.Store(str(tmp_path / "b"), hash="blake3").init()

    with pytest.raises(plait.StoreError, match="blake3"):
        plait.sync(src, dst)
    assert not dst.backend.listdir("versions")


def test_a_killed_sync_never_shows_a_version_without_its_blobs_and_resumes(tmp_path):
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    src = plait.Store(src_url)
    rng = random.Random(3)
    for v in range(6):
        folder = tmp_path / f"d{v}"
        folder.mkdir()
        for i in range(120):
            (folder / f"{i}.bin").write_bytes(rng.randbytes(8000))
        src.log(str(folder), name="data")
    code = f"import plait; plait.sync({src_url!r}, {dst_url!r})"
    env = {**os.environ, "PLAIT_CACHE_DIR": str(tmp_path / "child-cache")}
    for trial in range(4):
        child = subprocess.Popen([sys.executable, "-c", code], env=env)
        time.sleep(0.4 + 0.3 * trial)
        child.send_signal(signal.SIGKILL)
        child.wait()
        dst = plait.Store(dst_url)
        dst.reindex()
        for art in dst.artifacts():
            for version in dst.versions(art.name):
                assert version.verify() == [], f"{version.spec} visible before its blobs (trial {trial})"
    final = plait.sync(src, plait.Store(dst_url))
    dst = plait.Store(dst_url)
    assert [v.digest for v in dst.versions("data")] == [v.digest for v in src.versions("data")]
    assert dst.verify().ok and final.existing + len(final.versions) == 6


def test_cli_sync_to_and_from(tmp_path):
    here, there = str(tmp_path / "here"), str(tmp_path / "there")
    plait.Store(here).log(b"x", name="x", aliases=["production"])
    runner = CliRunner()

    out = runner.invoke(main, ["--store", here, "sync", "--to", there])
    assert out.exit_code == 0, out.output
    assert "x:v0 -> x:v0" in out.output and "1 versions copied" in out.output

    back = runner.invoke(main, ["--store", str(tmp_path / "third"), "--json", "sync", "--from", there, "x:production"])
    assert back.exit_code == 0, back.output
    assert json.loads(back.output)["versions"] == [{"source": "x:v0", "destination": "x:v0"}]

    both = runner.invoke(main, ["--store", here, "sync"])
    assert both.exit_code == 2 and "exactly one of --to URL or --from URL" in both.output


def test_an_unknown_alias_policy_is_refused_before_anything_is_sent(tmp_path):
    src, dst = plait.Store(str(tmp_path / "a")), plait.Store(str(tmp_path / "b"))
    src.log(b"x", name="x", aliases=["best"])

    with pytest.raises(plait.StoreError, match="aliases must be one of report, overwrite"):
        plait.sync(src, dst, aliases="merge")
    assert not os.path.exists(tmp_path / "b")
