"""Which store plait uses when none is given: the argument, $PLAIT_STORE, the nearest .plait/,
else ./.plait created on first write."""

from __future__ import annotations

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
