"""The everyday commands that surprised a new user: delete needs a version, history keeps deleted
versions, short run ids work, a re-log with new notes updates them, diff shows metadata and rows,
stats; through the CLI and the API, on a folder and on the loopback S3 server."""

from __future__ import annotations

import json

import pytest

import plait
from plait.errors import NotFoundError


@pytest.fixture
def two(fresh_cli, make_files):
    """``images:v0`` (aliased ``candidate``) and ``images:v1``."""
    folder = make_files({"a.txt": "alpha", "b/c.txt": "gamma"})
    fresh_cli("log", str(folder), "--name", "images", "--alias", "candidate", "--meta", "n=3", "--description", "raw")
    (folder / "a.txt").write_text("alpha 2")
    fresh_cli("log", str(folder), "--name", "images", "--meta", "n=4")
    return folder


def test_delete_needs_a_version_or_all(fresh_cli, two):
    result = fresh_cli("delete", "images", code=2)
    assert "give the version (images:v<N>" in result.stderr and "--all" in result.stderr
    assert [v.spec for v in fresh_cli.store.versions("images")] == ["images:v0", "images:v1"]
    result = fresh_cli("delete", "images", "--all", "--yes", code=1)  # an alias: refused before anything is deleted
    assert "aliases still point at images:v0 (candidate)" in result.stderr
    assert len(fresh_cli.store.versions("images")) == 2
    result = fresh_cli("delete", "images", "--all", "--force", input="n\n", code=2)
    assert "delete all 2 versions of images (v0, v1)?" in result.stderr and "nothing deleted" in result.stderr
    assert len(fresh_cli.store.versions("images")) == 2
    assert "--all deletes every version of a NAME" in fresh_cli("delete", "images:v1", "--all", code=2).stderr
    out = json.loads(fresh_cli("delete", "images", "--all", "--force", "--yes", json_out=True).output)
    assert out == {"deleted": ["images:v0", "images:v1"]}
    with pytest.raises(NotFoundError):
        plait.Store(fresh_cli.store.url, storage_options=fresh_cli.store.storage_options).versions("images")


def test_history_keeps_deleted_versions_their_aliases_tags_and_the_delete(fresh_cli, two):
    fresh_cli("tag", "images:v0", "eu")
    fresh_cli("delete", "images:v0", "--force")
    text = fresh_cli("history", "images").output
    lines = [line.split(None, 1)[1] for line in text.splitlines()]
    assert [line.split("  by ")[0].strip() for line in lines] == [
        "images:v0                logged", "images:v0                alias 'candidate' set",
        "images:v1                logged", "images:v0                tags +eu",
        "images:v0                alias 'candidate' removed", "images:v0                deleted"]
    assert "deleted" in fresh_cli("history", "images:v0").output
    assert "no artifact named 'nope'" in fresh_cli("history", "nope", code=3).stderr


def test_a_deleted_version_says_so(fresh_cli, two, tmp_path):
    fresh_cli("delete", "images:v0", "--force")
    message = "'images' has no version v0: it was deleted, see plait history images:v0 (it has v1)"
    assert message in fresh_cli("show", "images:v0", code=3).stderr
    (tmp_path / "new.txt").write_text("new")
    assert message in fresh_cli("log", str(tmp_path / "new.txt"), "--name", "images", "--onto", "images:v0", code=3).stderr
    fresh_cli("delete", "images:v1")
    gone = fresh_cli("get", "images", str(tmp_path / "out"), code=3).stderr
    assert "no artifact named 'images'" in gone and "every version of it was deleted, see plait history images" in gone
    assert not (tmp_path / "out").exists()


def test_ls_counts_live_versions(fresh_cli, two):
    fresh_cli("delete", "images:v1")
    assert json.loads(fresh_cli("ls", json_out=True).output)[0]["version"] == "v0"
    line = fresh_cli("ls").output.splitlines()[1].split()
    assert line[:4] == ["images", "dataset", "v0", "1"]


def test_ls_filters_by_tag_on_live_versions(fresh_cli, two, make_files):
    fresh_cli("log", str(make_files({"m.bin": "weights"})), "--name", "model", "--type", "model")
    fresh_cli("tag", "images:v0", "eu", "reviewed")
    fresh_cli("tag", "images:v1", "eu")
    fresh_cli("tag", "model:v0", "reviewed")
    names = lambda *tags: [a["name"] for a in json.loads(fresh_cli("ls", *(f"--tag={t}" for t in tags), json_out=True).output)]
    assert names("eu") == ["images"] and names("reviewed") == ["images", "model"]
    assert names("eu", "reviewed") == ["images"]  # both tags on one version
    fresh_cli("delete", "images:v0", "--force")
    assert names("eu", "reviewed") == [] and names("reviewed") == ["model"]  # a deleted version's tags do not count
    assert fresh_cli("ls", "--tag", "eu", "--tag", "reviewed").output.strip() == "no artifact has a version tagged eu, reviewed"


def test_short_run_ids_printed_by_listings_are_accepted(fresh_cli, two):
    table = fresh_cli("versions", "images").output.splitlines()
    short = table[1].split()[-1]
    assert len(short) == 8
    full = fresh_cli.store.get("images:v0").produced_by.id
    assert full.endswith(short)
    assert full in fresh_cli("run", "show", short).output
    assert full in fresh_cli("run", "show", short.lower()).output
    assert full in fresh_cli("run", "show", full[:12]).output


def test_an_ambiguous_run_id_lists_the_matches(file_store):
    for i in range(3):
        with plait.run(f"r{i}", store=file_store):
            pass
    ids = [r.id for r in file_store.runs()]
    common = ids[0][:6]  # the time part: runs started together share it
    assert all(i.startswith(common) for i in ids)
    with pytest.raises(NotFoundError, match=rf"run id '{common}' is ambiguous: 3 runs start or end with it: {ids[-1]} \(r"):
        file_store.get_run(common)


def test_relogging_the_same_content_with_new_notes_updates_them(fresh_cli, two):
    result = fresh_cli("log", str(two), "--name", "images", "--meta", "reviewed=true", "--description", "checked")
    assert "images:v1  (existing" in result.output and "applied as an update" in result.output
    v = fresh_cli.store.get("images:v1")
    assert v.metadata == {"n": 4, "reviewed": True} and v.description == "checked"
    updates = [h for h in v.history() if h.kind == "version.updated"]
    assert len(updates) == 1 and updates[0].detail["new"]["metadata"]["reviewed"] is True and updates[0].run
    fresh_cli("log", str(two), "--name", "images")  # nothing new to say: nothing recorded
    assert len([h for h in fresh_cli.store.get("images:v1").history() if h.kind == "version.updated"]) == 1


def test_diff_shows_metadata_description_and_rows(fresh_cli, two):
    text = fresh_cli("diff", "images:v0", "images:v1").output
    assert "M a.txt" in text and "metadata n: 3 -> 4" in text and 'description: "raw" -> ""' in text
    data = json.loads(fresh_cli("diff", "images:v0", "images:v1", json_out=True).output)
    assert data["metadata"] == {"n": {"old": 3, "new": 4}} and data["description"] == {"old": "raw", "new": ""}


def test_diff_counts_rows_of_parquet_and_hugging_face_versions(file_store, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "t"
    folder.mkdir()
    pq.write_table(pa.table({"a": list(range(10))}), folder / "x.parquet")
    pq.write_table(pa.table({"a": [1]}), folder / "same.parquet")
    v0 = file_store.log(str(folder), name="t")
    pq.write_table(pa.table({"a": list(range(25))}), folder / "x.parquet")
    v1 = file_store.log(str(folder), name="t")
    d = plait.diff(v0, v1)
    assert d.rows == {"x.parquet": (10, 25)} and "rows x.parquet: 10 -> 25 (+15)" in str(d)
    h0 = file_store.log(b"a", name="hf", metadata={"huggingface": {"kind": "DatasetDict", "splits": {"train": 8, "test": 2}}})
    h1 = file_store.log(b"b", name="hf", metadata={"huggingface": {"kind": "DatasetDict", "splits": {"train": 9, "test": 2}}})
    assert plait.diff(h0, h1).rows == {"train": (8, 9)}


def test_stats_logged_versus_stored(fresh_cli, make_files):
    folder = make_files({"big.bin": b"x" * 10_000, "small.txt": "s"})
    fresh_cli("log", str(folder), "--name", "ds")
    (folder / "small.txt").write_text("t")
    fresh_cli("log", str(folder), "--name", "ds")
    fresh_cli("log", str(folder / "big.bin"), "--name", "copy")
    data = json.loads(fresh_cli("stats", json_out=True).output)
    assert data["logged"] == 2 * 10_001 + 10_000 and data["stored"] == 10_002
    # the packs of format 2 also hold the versions' tree nodes and a header each
    assert 10_002 < data["on_storage"] < 10_002 + 4096
    assert {n["name"]: (n["versions"], n["logged"], n["stored"]) for n in data["names"]} == {
        "ds": (2, 20_002, 10_002), "copy": (1, 10_000, 10_000)}
    text = fresh_cli("stats").output
    assert "all: 29.3 KiB logged, 9.8 KiB stored (3.0x less)" in text
    fresh_cli("delete", "ds:v0")
    assert json.loads(fresh_cli("stats", "ds", json_out=True).output)["names"][0]["stored"] == 10_001
    assert "no artifact named 'zz'" in fresh_cli("stats", "zz", code=3).stderr


def test_store_options_after_the_command(s3_url, s3_options, make_files):
    from click.testing import CliRunner

    from plait.cli import main

    options = ["--store", s3_url, "--store-option", f"key={s3_options['key']}", "--store-option",
               f"secret={s3_options['secret']}", "--store-option",
               f"client_kwargs.endpoint_url={s3_options['client_kwargs']['endpoint_url']}"]
    logged = CliRunner().invoke(main, ["log", str(make_files({"a.txt": "a"})), "--name", "ds", *options])
    assert logged.exit_code == 0, logged.output
    listed = CliRunner().invoke(main, ["stats", "--json", *options])
    assert listed.exit_code == 0 and json.loads(listed.output)["names"][0]["name"] == "ds"
