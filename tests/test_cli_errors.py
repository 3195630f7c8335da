"""Every way the command line used to end in a traceback now ends in one line and an exit code.

Each test runs the real ``plait`` command (click's runner, in this process) against an input
that once raised from deep inside: the line says what is wrong and what to do, on stderr.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import plait
from plait.cli import main
from plait.formats import records as R
from plait.storage.digest import hash_bytes


def run(*args: str, store: str | os.PathLike[str] | None = None) -> Result:
    argv = (["--store", os.fspath(store)] if store is not None else []) + list(args)
    return CliRunner().invoke(main, argv)


def one_line(result: Result, code: int) -> str:
    """Assert ``result`` failed with ``code``, one line on stderr and no traceback; return the line."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plait: error: "), result.stderr
    return lines[0]


def crafted_version(store: plait.Store, name: str, entries: list[dict]) -> None:
    """Put a version whose manifest holds ``entries`` into the store, as a hostile writer could."""
    store.init()
    raw = json.dumps({"algorithm": store.algorithm, "entries": entries, "format": 1},
                     sort_keys=True, separators=(",", ":")).encode()
    digest = hash_bytes(raw, store.algorithm)
    store.backend.write(f"manifests/{digest[:2]}/{digest}", zlib.compress(raw))
    record = store.create_version({"name": name, "type": "dataset", "digest": digest, "size": 1,
                                   "file_count": len(entries), "created_at": "2024-01-01T00:00:00Z"})
    store.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"))


@pytest.fixture
def store(tmp_path: Path) -> plait.Store:
    return plait.Store(str(tmp_path / "store"))


def test_a_manifest_entry_that_is_both_a_file_and_a_folder(store, tmp_path: Path) -> None:
    digest = store.init().blobs.put_bytes(b"x")
    crafted_version(store, "clash", [{"path": "a", "digest": digest, "size": 1}, {"path": "a/b", "digest": digest, "size": 1}])
    line = one_line(run("get", "clash:v0", str(tmp_path / "out"), store=store.url), 4)
    assert "entry 'a' is both a file and a folder (the manifest also holds 'a/b')" in line


def test_a_path_part_longer_than_the_filesystem_allows(store, tmp_path: Path) -> None:
    digest = store.init().blobs.put_bytes(b"x")
    crafted_version(store, "long", [{"path": "d/" + "n" * 300, "digest": digest, "size": 1}])
    line = one_line(run("get", "long:v0", str(tmp_path / "out"), store=store.url), 4)
    assert "has a part of 300 bytes; filesystems allow 255" in line
    with pytest.raises(plait.InvalidPathError):
        plait.Artifact("x").add_bytes(b"x", "n" * 256)


def test_a_symlink_loop_inside_a_logged_folder(store, make_files) -> None:
    folder = make_files({"a/f.txt": "f"})
    os.symlink(folder, folder / "a" / "loop")
    assert "a loop" in one_line(run("log", str(folder), "--name", "ds", store=store.url), 1)


@pytest.mark.parametrize("meta", ["deep=" + "[" * 5000 + "]" * 5000, "note=caf\udcff"])
def test_metadata_a_reader_could_not_read_back(store, make_files, meta: str) -> None:
    folder = make_files({"f.txt": "f"})
    line = one_line(run("log", str(folder), "--name", "ds", "--meta", meta, store=store.url), 2)
    assert "nests more than 64 levels deep" in line or "is not valid UTF-8 (bytes b'\\xff'" in line
    assert not os.path.exists(os.path.join(store.url, "blobs"))


def test_a_description_over_the_size_limit(store, make_files) -> None:
    folder = make_files({"f.txt": "f"})
    line = one_line(run("log", str(folder), "--name", "ds", "--description", "d" * (2 << 20), store=store.url), 2)
    assert "String should have at most 1048576 characters" in line


def test_a_file_name_that_is_not_utf8(store, make_files) -> None:
    folder = make_files({"ok.txt": "ok"})
    with open(os.path.join(os.fsencode(folder), b"\xff.txt"), "wb") as f:
        f.write(b"x")
    assert "is not valid UTF-8; rename the file" in one_line(run("log", str(folder), "--name", "ds", store=store.url), 2)


def test_a_store_url_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-store"
    path.write_text("hello")
    assert "is a file, not a store" in one_line(run("ls", store=path), 1)


def test_an_ftp_store_that_refuses_the_connection() -> None:
    line = one_line(run("ls", store="ftp://127.0.0.1:1/store"), 1)
    assert "127.0.0.1" in line or "ftp://" in line


@pytest.mark.parametrize("body", [b"{damaged", b"[]", b'{"format": 1, "algorithm": "xxh3-128", "id": {}}', b"null"])
def test_a_damaged_plait_json(store, body: bytes) -> None:
    store.init()
    Path(store.url, "plait.json").write_bytes(body)
    assert "plait.json is damaged" in one_line(run("ls", store=store.url), 1)


def test_get_into_a_path_that_is_a_file(store, tmp_path: Path) -> None:
    store.log(b"bytes", name="x")
    target = tmp_path / "a-file"
    target.write_text("mine")
    assert "is a file; give a folder" in one_line(run("get", "x:v0", str(target), store=store.url), 2)
    assert target.read_text() == "mine"


def test_show_escapes_terminal_sequences_from_the_store(store) -> None:
    evil = "\x1b]0;pwned\x07\x1b[2J"
    store.log(plait.Artifact("x", description=f"looks {evil} fine").add_bytes(b"b", f"f{evil}.txt"))
    result = run("show", "x", store=store.url)
    assert result.exit_code == 0 and "\x1b" not in result.output and "\x07" not in result.output
    assert "f\\x1b]0;pwned\\x07\\x1b[2J.txt" in result.output and "looks \\x1b]0;pwned" in result.output
    assert json.loads(run("--json", "show", "x", store=store.url).output)["description"] == f"looks {evil} fine"
