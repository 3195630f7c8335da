"""Store settings: ``setting.set`` events folded into the index (the greatest event id wins, in any
order), shown, changed and unset from Python and the CLI, with their history; bad keys and values
are refused and change nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from plait import InvalidNameError, SettingsError, Store
from plait.base.ids import new_ulid, utcnow
from plait.cli import main
from plait.formats import records as R


def test_a_setting_is_set_shown_unset_and_kept_in_the_history(any_store: Store) -> None:
    assert any_store.settings() == {} and any_store.setting("team.owner", "nobody") == "nobody"
    assert any_store.set_setting("team.owner", "ml-platform") is True
    assert any_store.set_setting("team.owner", "ml-platform") is False  # unchanged: no event
    assert any_store.set_setting("references.allow", ["s3://team-data/"]) is True
    assert any_store.settings() == {"references.allow": ["s3://team-data/"], "team.owner": "ml-platform"}
    assert any_store.set_setting("team.owner", None) is True
    assert any_store.set_setting("team.owner", None) is False
    assert any_store.settings() == {"references.allow": ["s3://team-data/"]}
    changes = any_store.setting_history()
    assert [(c.key, c.value, c.old) for c in changes] == [
        ("team.owner", "ml-platform", None), ("references.allow", ["s3://team-data/"], None),
        ("team.owner", None, "ml-platform")]
    assert [c.key for c in any_store.setting_history("references.allow")] == ["references.allow"]
    assert "team.owner unset (was \"ml-platform\")" in str(changes[-1])


def test_settings_are_rebuilt_from_the_store_alone(store: Store) -> None:
    store.set_setting("retention.days", 30)
    store.set_setting("retention.days", 7)
    other = Store(store.url)
    other.reindex()
    assert other.settings() == {"retention.days": 7}


def test_the_event_with_the_greatest_id_wins_whatever_order_they_arrive_in(file_store: Store) -> None:
    file_store.init()
    early, late = sorted([new_ulid(), new_ulid()])
    events = [R.Event(id=eid, kind=R.SETTING_SET, time=utcnow(), user="u", data={"key": "a.b", "value": v, "old": None})
              for eid, v in ((late, "new"), (early, "old"))]
    for event in events:  # the later one first
        file_store.write_event_record(event)
    assert file_store.settings() == {"a.b": "new"}
    unset = R.Event(id=new_ulid(), kind=R.SETTING_SET, time=utcnow(), user="u", data={"key": "a.b", "value": None})
    file_store.append_event(unset)
    assert file_store.settings() == {}


@pytest.mark.parametrize("key, value, error, message", [
    ("Team.Owner", 1, SettingsError, "is not a setting key"),
    ("a..b", 1, SettingsError, "is not a setting key"),
    ("x" * 129, 1, SettingsError, "is not a setting key"),
    ("a.b", {1: 2}, SettingsError, "string keys"),
    ("a.b", float("nan"), SettingsError, "JSON-serializable"),
    ("a.b", "x" * (5 << 20), SettingsError, "a setting may hold"),
    ("references.allow", "s3://bucket/", SettingsError, "must be a list"),
    ("references.allow", ["a::b"], SettingsError, "chained"),
])
def test_bad_keys_and_values_are_refused_and_change_nothing(store: Store, listing, key, value, error, message) -> None:
    store.set_setting("a.b", "kept")
    before = listing(store)
    with pytest.raises(error, match=message):
        store.set_setting(key, value)
    assert listing(store) == before and store.settings() == {"a.b": "kept"}
    with pytest.raises(InvalidNameError):
        store.setting("Bad Key")


def test_a_hand_written_setting_event_with_a_bad_key_is_damaged_not_folded(file_store: Store) -> None:
    with pytest.raises(ValueError, match="not a setting key"):
        R.Event(id=new_ulid(), kind=R.SETTING_SET, time=utcnow(), data={"key": "../x", "value": 1})
    with pytest.raises(ValueError, match="needs 'key'"):
        R.Event(id=new_ulid(), kind=R.SETTING_SET, time=utcnow(), data={"key": "a.b"})


def _cli(store: Store, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--store", store.url, *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_plait_config_lists_shows_sets_and_unsets(file_store: Store) -> None:
    code, out = _cli(file_store, "config")
    assert code == 0 and "# references.allow (not set)" in out
    assert _cli(file_store, "config", "team.owner", "ml")[1].strip() == 'team.owner = "ml"'
    assert _cli(file_store, "config", "retention.days", "30")[0] == 0  # JSON when it parses
    assert file_store.settings() == {"retention.days": 30, "team.owner": "ml"}
    code, out = _cli(file_store, "config", "references.allow", '["s3://team-data/"]', "--json")
    assert code == 0 and json.loads(out) == {"key": "references.allow", "value": ["s3://team-data/"], "changed": True}
    assert _cli(file_store, "config", "retention.days") == (0, "30\n")
    code, out = _cli(file_store, "--json", "config")
    assert json.loads(out) == {"references.allow": ["s3://team-data/"], "retention.days": 30, "team.owner": "ml"}
    assert _cli(file_store, "config", "team.owner", "--unset")[0] == 0
    code, out = _cli(file_store, "config", "team.owner")
    assert code == 3 and "has no setting 'team.owner'" in out
    code, out = _cli(file_store, "config", "--history")
    assert code == 0 and len(out.strip().splitlines()) == 4 and "team.owner unset" in out


@pytest.mark.parametrize("args, message", [
    (["config", "Bad", "1"], "is not a setting key"),
    (["config", "references.allow", "x"], "must be a list"),
    (["config", "--unset"], "--unset takes one KEY"),
    (["config", "a.b", "1", "--unset"], "--unset takes one KEY"),
])
def test_plait_config_refuses_bad_input_in_one_line(file_store: Store, args, message) -> None:
    code, out = _cli(file_store, *args)
    assert code == 2 and message in out and len(out.strip().splitlines()) == 1
