"""The lifecycle hooks: an alias set, moved or removed, tags changed, a note or metadata edited, a
version deleted — each announced once, by the process that made the change, whichever way it was
made (API, CLI), on every backend; a raising hook is a warning; events synced in are not news."""

from __future__ import annotations

import pytest

import plait
from plait import Store
from plait.errors import PluginWarning
from plait.plugins import register, reset_plugin_manager


class Listener:
    """Implements the four lifecycle hooks and remembers each call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @plait.hookimpl
    def plait_alias_moved(self, store, name, alias, version, previous, change):
        self.calls.append(("plait_alias_moved", name, alias, version and version.spec, previous and previous.spec,
                           change.kind))

    @plait.hookimpl
    def plait_tags_changed(self, version, added, removed, change):
        self.calls.append(("plait_tags_changed", version.spec, added, removed, version.tags))

    @plait.hookimpl
    def plait_version_updated(self, version, old, new, change):
        self.calls.append(("plait_version_updated", version.spec, old, new, change.user))

    @plait.hookimpl
    def plait_version_deleted(self, version, change):
        self.calls.append(("plait_version_deleted", version.spec, version.deleted, change.id != ""))


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Listener:
    monkeypatch.setenv("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PLAIT_USER", "ada")
    reset_plugin_manager()
    found = Listener()
    register(found, name="listener")
    return found


def test_every_lifecycle_change_is_announced_once_with_what_changed(any_store: Store, listener: Listener) -> None:
    v0 = any_store.log(b"0", name="model", aliases=["production"])
    v1 = any_store.log(b"1", name="model")
    v1.set_alias("production")
    v1.remove_alias("production")
    v1.add_tags("eu", "reviewed")
    v1.remove_tags("eu")
    v1.update(description="good", metadata={"acc": 0.9})
    v0.delete()
    assert listener.calls == [
        ("plait_alias_moved", "model", "production", "model:v0", None, "alias.set"),
        ("plait_alias_moved", "model", "production", "model:v1", "model:v0", "alias.set"),
        ("plait_alias_moved", "model", "production", None, "model:v1", "alias.removed"),
        ("plait_tags_changed", "model:v1", ["eu", "reviewed"], [], ("eu", "reviewed")),
        ("plait_tags_changed", "model:v1", [], ["eu"], ("reviewed",)),
        ("plait_version_updated", "model:v1", {"description": "", "metadata": {}},
         {"description": "good", "metadata": {"acc": 0.9}}, "ada"),
        ("plait_version_deleted", "model:v0", True, True),
    ]


def test_changes_made_through_the_cli_are_announced(any_store: Store, listener: Listener, store_cli) -> None:
    any_store.log(b"0", name="model")
    store_cli(any_store, "alias", "model:v0", "staging")
    store_cli(any_store, "tag", "model:v0", "keep")
    store_cli(any_store, "delete", "model:v0", "--force")
    assert [c[0] for c in listener.calls] == ["plait_alias_moved", "plait_tags_changed", "plait_alias_moved",
                                              "plait_version_deleted"]


def test_the_everyday_commands_announce_their_changes_too(any_store: Store, listener: Listener, store_cli,
                                                          make_files) -> None:
    folder = make_files({"a.txt": "alpha"})
    store_cli(any_store, "log", str(folder), "--name", "images", "--tag", "eu")
    store_cli(any_store, "log", str(folder), "--name", "images", "--meta", "n=3")  # the same content, a new note
    (folder / "a.txt").write_text("beta")
    store_cli(any_store, "log", str(folder), "--name", "images", "--alias", "candidate")
    store_cli(any_store, "delete", "images", "--all", "--force", "--yes")
    assert listener.calls == [
        ("plait_tags_changed", "images:v0", ["eu"], [], ("eu",)),
        ("plait_version_updated", "images:v0", {"metadata": {}}, {"metadata": {"n": 3}}, "ada"),
        ("plait_alias_moved", "images", "candidate", "images:v1", None, "alias.set"),
        ("plait_version_deleted", "images:v0", True, True),
        ("plait_alias_moved", "images", "candidate", None, "images:v1", "alias.removed"),  # --force drops it
        ("plait_version_deleted", "images:v1", True, True),
    ]


def test_events_that_arrive_from_another_store_are_not_announced_again(store: Store, listener: Listener,
                                                                       tmp_path) -> None:
    store.log(b"0", name="model", aliases=["production"], tags=["eu"])
    listener.calls.clear()
    plait.sync(store, Store(str(tmp_path / "other")))
    assert listener.calls == []


def test_a_raising_lifecycle_hook_is_a_warning_and_the_change_stands(store: Store, listener: Listener) -> None:
    class Broken:
        @plait.hookimpl
        def plait_tags_changed(self, version, added, removed, change):
            raise RuntimeError("boom")

    register(Broken(), name="broken")
    v = store.log(b"0", name="model")
    with pytest.warns(PluginWarning, match="plait_tags_changed: RuntimeError: boom"):
        v = v.add_tags("eu")
    assert store.get("model").tags == ("eu",)
