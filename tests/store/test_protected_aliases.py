"""Protected aliases (the store setting ``aliases.protected``): moving, removing or deleting one
needs ``force_protected`` (``--protected``) and is recorded as such; without it the refusal
changes nothing. A malformed hand-written setting protects every alias."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import plait
from plait import ProtectedAliasError, SettingsError, Store
from plait.cli import main
from plait.formats import records as R

pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


@pytest.fixture
def models(any_store: Store) -> Store:
    any_store.log(b"one", name="model", aliases=["production", "staging"])
    any_store.log(b"two", name="model")
    any_store.log(b"data", name="data", aliases=["production"])
    any_store.set_setting("aliases.protected", ["model:production", "staging"])
    return any_store


def test_a_protected_alias_moves_only_when_forced_and_says_so(models: Store, listing) -> None:
    before = listing(models)
    for change in (lambda: models.get("model:v1").set_alias("production"),
                   lambda: models.get("model:v0").remove_alias("staging"),
                   lambda: models.get("model:v0").delete(force=True)):
        with pytest.raises(ProtectedAliasError, match=r"model:(production|staging) is protected .*force_protected=True"):
            change()
    assert listing(models) == before and models.get("model:production").number == 0
    assert "production" not in models.get("data:v0").remove_alias("production").aliases  # protected only on model
    moved = models.get("model:v1").set_alias("production", force_protected=True)
    assert "production" in moved.aliases
    entry = moved.history()[-1]
    assert entry.detail["protected"] is True and str(entry).endswith("alias 'production' set (from v0) (protected)  by " + entry.user)
    models.get("model:v1").set_alias("production")  # already there: no change, no right needed
    first = models.get("model:v0")
    first.delete(force=True, force_protected=True)
    removed = [e for e in first.history() if e.kind == R.ALIAS_REMOVED]
    assert [(e.detail["alias"], e.detail.get("protected")) for e in removed] == [("staging", True)]
    assert models.is_protected("model", "production") and not models.is_protected("model", "best")


def test_logging_with_a_protected_alias_logs_the_version_but_does_not_set_the_alias(models: Store) -> None:
    with plait.run("deploy", store=models) as run, pytest.raises(ProtectedAliasError):
        run.log(b"three", name="model", aliases=["production"])
    assert models.get("model:v2").aliases == ("latest",) and models.get("model:production").number == 0


@pytest.mark.parametrize("value, message", [
    ("production", "must be a list of aliases"),
    (["latest"], "cannot be set by hand"),
    (["model:v3"], "looks like a version number"),
    (["Bad Name:prod"], "is not an alias or NAME:ALIAS"),
])
def test_bad_values_are_refused(models: Store, value, message) -> None:
    with pytest.raises(SettingsError, match=message):
        models.set_setting("aliases.protected", value)
    assert models.setting("aliases.protected") == ["model:production", "staging"]


def test_a_malformed_hand_written_setting_protects_every_alias(models: Store) -> None:
    models.write_event(R.SETTING_SET, {"key": "aliases.protected", "value": "production", "old": None})
    assert models.is_protected("data", "anything")
    with pytest.raises(ProtectedAliasError):
        models.get("data:v0").remove_alias("production")


def _cli(store: Store, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--store", store.url, *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_the_cli_needs_protected_to_move_one(file_store: Store) -> None:
    file_store.log(b"one", name="model", aliases=["production"])
    file_store.log(b"two", name="model")
    file_store.set_setting("aliases.protected", ["production"])
    models = file_store
    code, out = _cli(models, "alias", "model:v1", "production")
    assert code == 2 and out.count("\n") == 1 and "model:production is protected" in out and "--protected" in out
    code, out = _cli(models, "delete", "model:v0", "--force")
    assert code == 2 and "is protected" in out and models.get("model:v0").aliases
    assert _cli(models, "alias", "model:v1", "production", "--protected")[0] == 0
    code, out = _cli(models, "history", "model:v1")
    assert code == 0 and "alias 'production' set (from v0) (protected)" in out


def test_deleting_every_version_checks_protected_aliases_before_deleting_any(file_store: Store) -> None:
    file_store.log(b"one", name="model")
    file_store.log(b"two", name="model", aliases=["production"])
    file_store.set_setting("aliases.protected", ["production"])
    code, out = _cli(file_store, "delete", "model", "--all", "--force", "--yes")
    assert code == 2 and "model:production is protected" in out
    assert [v.version for v in file_store.versions("model")] == ["v0", "v1"]  # nothing deleted, v0 included
    code, out = _cli(file_store, "delete", "model", "--all", "--force", "--protected", "--yes")
    assert code == 0 and "deleted 2 versions of model" in out
    with pytest.raises(plait.NotFoundError, match="deleted"):
        file_store.versions("model")
