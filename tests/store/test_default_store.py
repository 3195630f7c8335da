"""Which store plait uses when none is given: the argument, $PLAIT_STORE, the nearest .plait/,
else ./.plait created on first write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import plait
from plait.base.paths import default_store_url


def test_without_anything_the_store_is_dot_plait_here_created_on_first_write(isolated: Path) -> None:
    assert default_store_url() == str(isolated / ".plait")
    assert plait.Store().url == str(isolated / ".plait")
    assert not (isolated / ".plait").exists()  # opening it writes nothing
    v = plait.log(b"hello", name="greeting")
    assert v.spec == "greeting:v0"
    assert (isolated / ".plait" / "plait.json").is_file()
    assert plait.get("greeting").read_bytes(v.files()[0].path) == b"hello"


def test_the_nearest_dot_plait_walking_up_is_used(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / ".plait").mkdir()
    deep = isolated / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert default_store_url() == str(isolated / ".plait")
    (isolated / "a" / ".plait").mkdir()
    assert default_store_url() == str(isolated / "a" / ".plait")
    assert default_store_url(start=isolated) == str(isolated / ".plait")
    plait.log(b"x", name="found")
    assert (isolated / "a" / ".plait" / "plait.json").is_file()
    assert not (deep / ".plait").exists()


def test_plait_store_in_the_environment_wins_over_a_folder(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / ".plait").mkdir()
    monkeypatch.setenv("PLAIT_STORE", "memory://from-env")
    assert default_store_url() == "memory://from-env"
    assert plait.log(b"x", name="env").store.url == "memory://from-env"
    assert not (isolated / ".plait" / "plait.json").exists()


def test_an_explicit_store_wins_over_everything(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_STORE", "memory://from-env")
    explicit = str(isolated / "explicit")
    v = plait.log(b"x", name="mine", store=explicit)
    assert v.store.url == explicit and plait.Store(explicit).get("mine").spec == "mine:v0"
    with pytest.raises(plait.NotFoundError):
        plait.get("mine")  # the environment's store does not have it
    assert plait.get("mine", store=explicit).spec == "mine:v0"


def test_the_cache_folder_follows_plait_cache_dir(isolated: Path) -> None:
    from plait.base.paths import user_cache_dir

    assert user_cache_dir() == isolated / "_cache"


def test_a_dot_plait_another_user_owns_is_passed_over_with_one_line_saying_how_to_use_it(
        isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from click.testing import CliRunner

    from plait import PlaitWarning
    from plait.cli import main

    if not hasattr(os, "getuid") or os.getuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    theirs = isolated / ".plait"
    theirs.mkdir()
    os.chown(theirs, 54321, 54321)
    deep = isolated / "project"
    deep.mkdir()
    monkeypatch.chdir(deep)
    with pytest.warns(PlaitWarning, match=f"ignoring {theirs}: it belongs to another user; pass --store {theirs}"):
        assert default_store_url() == str(deep / ".plait")
    result = CliRunner().invoke(main, ["ls"])
    assert result.exit_code == 0 and "no artifacts yet" in result.output
    assert result.stderr.splitlines() == [f"plait: warning: ignoring {theirs}: it belongs to another user; pass --store "
                                          f"{theirs} (or set $PLAIT_STORE) to use it"]
    assert os.listdir(theirs) == []  # nothing read into it, nothing written
    monkeypatch.chdir(isolated)  # where ./.plait itself is theirs: no store of ours to fall back to
    result = CliRunner().invoke(main, ["ls"])
    assert result.exit_code == 1 and result.stderr.splitlines() == [
        f"plait: error: {theirs} belongs to another user; pass --store {theirs} to use it, or --store URL "
        "(or $PLAIT_STORE) for another store"]
    assert os.listdir(theirs) == []


def test_logging_a_project_never_takes_its_store_or_cache_as_data(isolated: Path, make_files) -> None:
    from click.testing import CliRunner

    from plait.cli import main

    make_files({"train.py": "print('hi')", "data/rows.csv": "a,b\n"}, folder=".")
    first = CliRunner().invoke(main, ["--json", "log", ".", "--name", "project"])
    assert first.exit_code == 0, first.output
    assert (isolated / ".plait" / "cache" / "index.sqlite").exists()
    version = plait.get("project")
    assert sorted(e.path for e in version.files()) == ["data/rows.csv", "train.py"]
    again = CliRunner().invoke(main, ["--json", "log", ".", "--name", "project"])  # the store grew meanwhile
    assert again.exit_code == 0 and json.loads(again.output)["spec"] == "project:v0"
    nested = isolated / "data" / "copy-of-store"
    import shutil

    shutil.copytree(isolated / ".plait", nested, ignore=shutil.ignore_patterns("cache"))
    assert sorted(e.path for e in plait.log(str(isolated / "data"), name="data").files()) == ["rows.csv"]
