"""The ``plait`` command: every artifact command, ``--json`` output, and one clear line for a mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from blobview import Blobs
from click.testing import CliRunner, Result

import plait
from plait.cli import app, main


@pytest.fixture
def cli(tmp_path: Path):
    """Run ``plait --store <tmp>/store ARGS…`` in-process; return the click result."""
    store = str(tmp_path / "store")

    def invoke(*args: str, json_out: bool = False, code: int = 0) -> Result:
        argv = ["--store", store, *(["--json"] if json_out else []), *args]
        result = CliRunner().invoke(main, argv, catch_exceptions=False)
        assert result.exit_code == code, (argv, result.output, result.stderr)
        return result

    invoke.store = store  # type: ignore[attr-defined]
    return invoke


@pytest.fixture
def logged(cli, make_files):
    """A store with ``images:v0`` (a.txt, b/c.txt) and ``images:v1`` (a.txt changed, d.txt added)."""
    folder = make_files({"a.txt": "alpha", "b/c.txt": "gamma"})
    cli("log", str(folder), "--name", "images", "--alias", "candidate", "--meta", "source=lab", "--meta", "n=3",
        "--description", "raw scans")
    (folder / "a.txt").write_text("alpha 2")
    (folder / "d.txt").write_text("delta")
    cli("log", str(folder), "--name", "images")
    return folder


def test_init_creates_a_store(cli, tmp_path: Path) -> None:
    out = json.loads(cli("init", json_out=True).output)
    assert out["url"] == cli.store and out["algorithm"] == "xxh3-128" and len(out["id"]) == 26
    assert (tmp_path / "store" / "plait.json").is_file()
    other = tmp_path / "b3"
    assert "blake3" in cli("init", str(other), "--hash", "blake3").output
    assert json.loads((other / "plait.json").read_text())["algorithm"] == "blake3"


def test_log_prints_the_version_and_json_describes_it(cli, make_files) -> None:
    folder = make_files({"a.txt": "alpha", "b/c.txt": "gamma"})
    out = cli("log", str(folder), "-n", "images", "-t", "dataset", "-a", "candidate", "-m", "k=v", "-m", "n=3",
              "-d", "raw", json_out=True).output
    data = json.loads(out)
    assert (data["spec"], data["file_count"], data["size"], data["metadata"]) == ("images:v0", 2, 10, {"k": "v", "n": 3})
    assert data["aliases"] == ["latest", "candidate"] and data["description"] == "raw"
    text = cli("log", str(folder / "a.txt"), "--name", "single").output
    assert text.startswith("single:v0  (new)  1 files, 5 B")
    again = cli("log", str(folder / "a.txt"), "--name", "single", json_out=True).output
    assert (json.loads(again)["spec"], json.loads(again)["created"], data["created"]) == ("single:v0", False, True)
    text = cli("log", str(folder / "a.txt"), "--name", "single").output
    assert text.startswith("single:v0  (existing: the same content was logged before)  1 files")


def test_log_by_reference_copies_nothing(cli, make_files, tmp_path: Path) -> None:
    folder = make_files({"r/1.csv": "1"})
    data = json.loads(cli("log", str(folder / "r"), "--name", "raw", "--reference", json_out=True).output)
    assert data["file_count"] == 1
    store = plait.Store(str(tmp_path / "store"))
    assert Blobs.stored(store) == {} and len(Blobs.stored(store, nodes=True)) == 1  # the version's tree: no data


def test_ls_versions_and_show(cli, logged) -> None:
    assert json.loads(cli("ls", json_out=True).output)[0]["spec"] == "images:v1"
    lines = cli("ls").output.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "LATEST", "VERSIONS", "SIZE", "UPDATED"]
    assert lines[1].split()[:4] == ["images", "dataset", "v1", "2"]
    assert cli("ls", "--type", "model").output.strip() == "no artifacts yet"

    versions = json.loads(cli("versions", "images", json_out=True).output)
    assert [(v["version"], v["aliases"]) for v in versions] == [("v0", ["candidate"]), ("v1", ["latest"])]
    assert "v0" in cli("versions", "images").output

    shown = json.loads(cli("show", "images:candidate", json_out=True).output)  # files streamed into the document
    assert [f["path"] for f in shown["files"]] == ["a.txt", "b/c.txt"] and shown["metadata"] == {"source": "lab", "n": 3}
    assert shown["files"][1] == {"path": "b/c.txt", "digest": shown["files"][1]["digest"], "size": 5}
    assert list(shown)[-3:] == ["files", "produced_by", "producers"]
    assert json.loads(cli("show", "images:v0", "--no-files", json_out=True).output)["files"] is None
    text = cli("show", "images:v0").output
    assert "images:v0  (dataset)  candidate" in text and "description raw scans" in text and "  b/c.txt  5 B" in text


def test_a_json_listing_is_a_file_a_line_written_in_batches(cli, logged, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(app, "LISTING_BATCH", 2)  # three files: two batches
    out = cli("show", "images:v1", json_out=True).output
    shown = json.loads(out)
    lines = [line.strip().rstrip(",") for line in out.splitlines() if '"path": ' in line]
    assert [json.loads(line) for line in lines] == shown["files"] and len(lines) == 3
    (tmp_path / "nothing").mkdir()
    cli("log", str(tmp_path / "nothing"), "--name", "empty")
    assert json.loads(cli("show", "empty:v0", json_out=True).output)["files"] == []


def test_get_downloads_a_version(cli, logged, tmp_path: Path) -> None:
    out = json.loads(cli("get", "images:v0", str(tmp_path / "out"), json_out=True).output)
    assert out == {"spec": "images:v0", "path": str(tmp_path / "out")}
    assert (tmp_path / "out" / "a.txt").read_text() == "alpha" and (tmp_path / "out" / "b/c.txt").read_text() == "gamma"


def test_alias_set_remove_and_history(cli, logged) -> None:
    assert "production" in cli("alias", "images:v1", "production").output
    cli("alias", "images:v0", "production")
    assert json.loads(cli("alias", "images:v0", "candidate", "--remove", json_out=True).output)["aliases"] == ["production"]
    history = json.loads(cli("history", "images:v0", json_out=True).output)
    assert [h["kind"] for h in history] == ["version.logged", "alias.set", "alias.set", "alias.removed"]
    assert history[2]["detail"] == {"alias": "production", "number": 0, "old": 1}
    text = cli("history", "images").output
    assert "alias 'production' set (from v1)" in text and text.count("logged") == 2


def test_diff(cli, logged) -> None:
    data = json.loads(cli("diff", "images:v0", "images:v1", json_out=True).output)
    assert data["added"] == [{"path": "d.txt", "size": 5}]
    assert data["modified"] == [{"path": "a.txt", "old_size": 5, "new_size": 7}]
    assert data["removed"] == [] and data["unchanged"] == 1
    assert cli("diff", "images:v0", "images").output.splitlines()[0] == "images:v0 -> images:v1: 1 added, 0 removed, 1 modified, 1 unchanged"


def test_verify_passes_then_fails_on_damage(cli, logged, tmp_path: Path) -> None:
    data = json.loads(cli("verify", json_out=True).output)
    assert data["ok"] and data["versions"] == 2 and data["problems"] == []
    assert cli("verify", "images:v0").output.strip().startswith("ok: 1 versions")
    store = plait.Store(str(tmp_path / "store"))
    Blobs.flip(store, sorted(Blobs.stored(store))[0])
    out = cli("verify", code=4).output
    assert "DAMAGED images:v" in out and out.strip().splitlines()[-1].startswith("FAILED")


def test_gc_dry_run_and_delete(cli, logged) -> None:
    root = plait.Store(cli.store).get("images:v1").manifest.root.raw_size
    cli("delete", "images:v1")
    data = json.loads(cli("gc", "--dry-run", "--grace", "0", json_out=True).output)
    # "alpha 2" and "delta" are unique to v1, and so is its tree's root node (b/ is shared)
    assert data["dry_run"] and data["blobs"] == 3 and data["bytes"] == 12 + root
    assert cli("gc", "--delete", "--grace", "0").output.startswith(f"freed {12 + root} B in 3 blobs")
    assert json.loads(cli("gc", "--grace", "0", json_out=True).output)["blobs"] == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["get", "nope"], 3, "plait: error: no artifact named 'nope'"),
        (["show", "images:v9"], 3, "'images' has no version v9 (it has v0, v1, aliases: candidate)"),
        (["show", "images:staging"], 3, "'images' has no alias 'staging'"),
        (["versions", "bad name"], 2, "artifact name 'bad name' is not allowed"),
        (["get", "images:a b"], 2, "is not a valid spec"),
        (["alias", "images:v0", "latest"], 2, "'latest' always follows the newest version"),
        (["alias", "images:v0", "v3"], 2, "looks like a version number"),
        (["alias", "images:v0", "unset", "--remove"], 3, "has no alias 'unset'"),
        (["log", "missing-folder", "--name", "x"], 1, "cannot add"),
        (["log", ".", "--name", "bad name"], 2, "'bad name' is not allowed"),
        (["log", ".", "--name", "x", "--meta", "novalue"], 2, "--meta takes key=value"),
        (["diff", "images:v0", "nope:v0"], 3, "no artifact named 'nope'"),
        (["delete", "images:v0"], 1, "still has aliases candidate"),
    ],
)
def test_a_user_mistake_prints_one_line_and_exits_non_zero(cli, logged, args: list[str], code: int, message: str) -> None:
    result = cli(*args, code=code)
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("plait: error: ") and message in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_store_protocol_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--store", "gs://bucket/x", "ls"])
    assert result.exit_code == 2 and result.stderr.strip() == result.stderr.strip().splitlines()[0]
    assert "pip install 'plait[gcs]'" in result.stderr


def test_the_console_script_and_python_m_plait(tmp_path: Path, make_files) -> None:
    folder = make_files({"a.txt": "alpha"})
    env = {**os.environ, "PLAIT_STORE": str(tmp_path / "store"), "PLAIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    logged = subprocess.run([sys.executable, "-m", "plait", "--json", "log", str(folder), "--name", "ds"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert logged.returncode == 0, logged.stderr
    assert json.loads(logged.stdout)["spec"] == "ds:v0"
    exe = Path(sys.executable).with_name("plait")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "plait"]
    missing = subprocess.run([*command, "get", "nope"], capture_output=True, text=True, env=env, timeout=60)
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr.startswith("plait: error: no artifact named 'nope'") and "Traceback" not in missing.stderr
