"""Tags: put on and taken off versions in one event each, folded in any order, shown in every
listing and in the history, from Python and the CLI, on every backend; bad tags change nothing."""

from __future__ import annotations

import json

import pytest

import plait
from plait import InvalidInputError, InvalidNameError, NotFoundError, Store
from plait.base.ids import new_ulid, utcnow
from plait.formats import records as R


def test_tags_are_added_removed_and_kept_in_the_history(any_store: Store) -> None:
    v = any_store.log(b"weights", name="model", type="model")
    v = v.add_tags("eu", "reviewed")
    assert v.tags == ("eu", "reviewed")
    assert v.add_tags(["eu"]).tags == ("eu", "reviewed")  # already on: no event
    v = v.remove_tags("eu")
    assert v.tags == ("reviewed",) and any_store.get("model:v0").tags == ("reviewed",)
    changes = [(h.kind, h.detail.get("added"), h.detail.get("removed")) for h in v.history()]
    assert changes == [(R.VERSION_LOGGED, None, None), (R.TAGS_CHANGED, ["eu", "reviewed"], []),
                       (R.TAGS_CHANGED, [], ["eu"])]
    assert "tags +eu +reviewed" in str(v.history()[1]) and "tags -eu" in str(v.history()[2])
    assert v.to_dict()["tags"] == ["reviewed"]
    assert any_store.tag_counts() == {"reviewed": 1}


def test_tags_at_log_time_and_on_an_existing_version(store: Store) -> None:
    v = plait.log(b"a", name="ds", tags=["eu", "raw"], store=store)
    assert v.tags == ("eu", "raw")
    again = plait.log(b"a", name="ds", tags=["checked"], store=store)  # the same content: the same version
    assert (again.spec, again.tags) == ("ds:v0", ("checked", "eu", "raw"))


def test_tags_are_rebuilt_from_the_store_and_the_later_event_wins_in_any_order(file_store: Store) -> None:
    v = file_store.log(b"x", name="ds")
    first, second = new_ulid(), new_ulid()
    on = R.Event(id=first, kind=R.TAGS_CHANGED, time=utcnow(), data={"name": "ds", "number": 0, "added": ["eu"], "removed": []})
    off = R.Event(id=second, kind=R.TAGS_CHANGED, time=utcnow(), data={"name": "ds", "number": 0, "added": [], "removed": ["eu"]})
    for event in (off, on):  # the later one first
        file_store.write_event_record(event)
    assert file_store.get("ds:v0").tags == ()
    other = Store(file_store.url)
    other.reindex()
    assert other.get(v.spec).tags == ()


@pytest.mark.parametrize("tags, error, message", [
    (["bad tag"], InvalidNameError, "tag 'bad tag' is not allowed"),
    (["-x"], InvalidNameError, "tag '-x' is not allowed"),
    (["x" * 129], InvalidNameError, "the limit is 128"),
    ([""], InvalidNameError, "tag must be a non-empty string"),
])
def test_bad_tags_are_refused_and_change_nothing(store: Store, listing, tags, error, message) -> None:
    v = store.log(b"x", name="ds")
    before = listing(store)
    with pytest.raises(error, match=message):
        v.add_tags(*tags)
    with pytest.raises(error, match=message):
        plait.log(b"other", name="ds", tags=tags, store=store)
    assert listing(store) == before and store.versions("ds")[-1].tags == ()


def test_removing_a_tag_that_is_not_there_names_the_tags_it_has(store: Store) -> None:
    v = store.log(b"x", name="ds").add_tags("eu")
    with pytest.raises(NotFoundError, match=r"ds:v0 has no tag 'us' \(its tags: eu\)"):
        v.remove_tags("us", "eu")
    assert store.get("ds").tags == ("eu",)  # nothing half-done
    with pytest.raises(InvalidInputError, match="at least one tag"):
        v.add_tags()


def test_a_crafted_tag_event_is_refused_by_the_record_parser(file_store: Store) -> None:
    file_store.log(b"x", name="ds")
    with pytest.raises(ValueError, match="tag"):
        R.Event(id=new_ulid(), kind=R.TAGS_CHANGED, time=utcnow(), data={"name": "ds", "number": 0, "added": ["a b"], "removed": []})
    with pytest.raises(ValueError, match="adds and removes the same tag"):
        R.Event(id=new_ulid(), kind=R.TAGS_CHANGED, time=utcnow(), data={"name": "ds", "number": 0, "added": ["a"], "removed": ["a"]})


def test_plait_tag_and_tags_and_every_listing(any_store: Store, store_cli) -> None:
    any_store.log(b"1", name="model", type="model")
    any_store.log(b"2", name="model", type="model")
    assert store_cli(any_store, "tag", "model:v0", "eu", "reviewed").output.strip() == "model:v0  tags: eu reviewed"
    store_cli(any_store, "tag", "model:v1", "eu")
    store_cli(any_store, "tag", "model:v0", "reviewed", "--remove")
    out = store_cli(any_store, "versions", "model").output
    assert out.splitlines()[0].split() == ["VERSION", "SIZE", "FILES", "ALIASES", "TAGS", "CREATED", "RUN"]
    listed = json.loads(store_cli(any_store, "--json", "versions", "model", "--tag", "eu").output)
    assert [(v["spec"], v["tags"]) for v in listed] == [("model:v0", ["eu"]), ("model:v1", ["eu"])]
    assert "tags        eu" in store_cli(any_store, "show", "model:v1").output
    assert json.loads(store_cli(any_store, "--json", "tags").output) == {"eu": 2}
    assert "tags -reviewed" in store_cli(any_store, "history", "model:v0").output
    bad = store_cli(any_store, "tag", "model:v0", "b@d", code=2)
    assert bad.stderr.strip().startswith("plait: error: tag 'b@d' is not allowed") and len(bad.stderr.splitlines()) == 1
    missing = store_cli(any_store, "tag", "model:v0", "nope", "--remove", code=3)
    assert "has no tag 'nope'" in missing.stderr
    logged = json.loads(store_cli(any_store, "--json", "log", __file__, "--name", "code", "--tag", "src", "--ttl", "30d").output)
    assert logged["tags"] == ["src"] and logged["expires_at"] > utcnow()
