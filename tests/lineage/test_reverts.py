"""A revert: going back to data logged before returns that version (no duplicate) and makes it
``latest`` again, for every reader: resolve, the lineage, the CLI, the dashboard and a synced copy."""

from __future__ import annotations

import json

from plait_pipelines import down, labels, specs, up

import plait
from plait.cli import main


def revert(store: plait.Store, tmp_path) -> None:
    """raw -> clean (A), a new cleaning rule (B), then the rule reverted (A again); train on latest."""
    with plait.run("ingest", store=store) as run:
        run.log(b"raw rows", name="raw")
    for rule, text in (("keep", "rows A"), ("drop-short", "rows B"), ("keep", "rows A")):
        with plait.run("clean", store=store, config={"rule": rule}) as run:
            run.use("raw:latest")
            run.log(text.encode(), name="clean")
    with plait.run("train", store=store) as run:
        run.use("clean:latest")
        run.log(b"weights from rows A", name="model", type="model")


def test_a_revert_returns_the_old_version_and_moves_latest_back(store, tmp_path):
    revert(store, tmp_path)
    names = labels(store)
    assert specs(store.versions("clean")) == ["clean:v0", "clean:v1"]  # no clean:v2 holding the bytes of v0
    back = store.get("clean:latest")
    assert back.spec == "clean:v0" and "latest" in back.aliases
    assert [names[r.id] for r in back.producers] == ["clean#1", "clean#3"] and names[back.produced_by.id] == "clean#3"
    assert [h.kind for h in back.history() if h.kind != "version.used"] == ["version.logged", "version.produced"]

    assert up(store, "model:v0") == ({"model:v0", "clean:v0", "raw:v0"}, {"train#1", "clean#3", "ingest#1"})
    assert up(store, "model:v0", producers="all") == (
        {"model:v0", "clean:v0", "raw:v0"}, {"train#1", "clean#1", "clean#3", "ingest#1"})
    assert down(store, "clean:v1") == ({"clean:v1"}, set())


def test_every_reader_agrees_on_latest_after_a_revert(store, tmp_path):
    revert(store, tmp_path)
    from click.testing import CliRunner

    listed = json.loads(CliRunner().invoke(main, ["--store", store.url, "--json", "ls"]).output)
    assert {a["name"]: a["version"] for a in listed}["clean"] == "v0"
    table = CliRunner().invoke(main, ["--store", store.url, "ls"]).output
    assert [line.split()[:4] for line in table.splitlines() if line.startswith("clean")] == [["clean", "result", "v0", "2"]]
    assert [v.spec for v in store.artifacts() if v.name == "clean"] == ["clean:v0"]

    from plait.ui import queries

    page = queries.artifacts(store, q="clean")
    assert [(a["name"], a["latest"]) for a in page.items] == [("clean", "v0")]
    assert {v["version"]: v["aliases"] for v in queries.versions(store, "clean").items} == {"v1": [], "v0": ["latest"]}

    copy = plait.Store(str(tmp_path / "copy"))
    plait.sync(store, copy)
    assert copy.get("clean:latest").digest == store.get("clean:v0").digest
    assert [r.name for r in copy.get("clean:latest").producers] == ["clean", "clean"]


def test_the_stat_cache_shortcut_finds_the_reverted_folder(store, tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    (folder / "rows.csv").write_text("a\n")
    first = store.log(str(folder), name="clean")
    (folder / "rows.csv").write_text("b\n")
    store.log(str(folder), name="clean")
    (folder / "rows.csv").write_text("a\n")
    assert store.log(str(folder), name="clean").spec == first.spec == store.get("clean").spec
