"""Retention: per-name policies and per-version TTLs, planned by a dry run and applied by ``gc``,
each expiry recorded with its reason; an aliased version is never expired without saying so; a
policy that would expire every version, and a TTL in the past, are refused and change nothing.
Through the API and the CLI, on the file store and the loopback S3 server."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from plait import InvalidInputError, Store
from plait.formats.retention import RetentionPolicy
from plait.ops.retention import expire, plan, set_policy


@pytest.fixture(params=["file", "s3"])
def ckpts(request: pytest.FixtureRequest) -> Store:
    """ckpt:v0..v5 logged in order; v1 has alias best, v2 is tagged keep."""
    store = request.getfixturevalue(f"{request.param}_store")
    for i in range(6):
        store.log(f"checkpoint {i}".encode(), name="ckpt", type="model")
    store.get("ckpt:v1").set_alias("best")
    store.get("ckpt:v2").add_tags("keep")
    return store


def live(store: Store, name: str = "ckpt") -> list[int]:
    return [v.number for v in store.versions(name)]


def test_a_policy_is_planned_then_applied_by_gc(ckpts: Store) -> None:
    preview = ckpts.retain("ckpt", keep_last=2, keep_tagged=["keep"])
    assert [d.spec for d in preview.expired] == ["ckpt:v3", "ckpt:v0"]
    assert {d.spec: d.reason for d in preview.kept} == {
        "ckpt:v2": "retention: not among the last 2, but it is tagged keep",
        "ckpt:v1": "retention: not among the last 2, but alias best points at it"}
    assert ckpts.setting("retention") == {"ckpt": {"keep_last": 2, "keep_tagged": ["keep"]}}
    dry = ckpts.expire()
    assert [d.spec for d in dry.expired] == ["ckpt:v0", "ckpt:v3"] and live(ckpts) == [0, 1, 2, 3, 4, 5]
    done = ckpts.expire(dry_run=False)
    assert not done.dry_run and live(ckpts) == [1, 2, 4, 5]
    deleted = [h for h in ckpts.get("ckpt:v1").history()]  # the history of a kept one is untouched
    assert all(h.kind != "version.deleted" for h in deleted)
    assert ckpts.expire(dry_run=False).expired == []  # applied once


def test_a_policy_that_lets_aliased_versions_go_names_the_aliases_it_removes(ckpts: Store) -> None:
    report = ckpts.retain("ckpt", keep_last=1, keep_aliased=False)
    removed = {d.spec: d for d in report.expired}["ckpt:v1"]
    assert removed.aliases == ("best",) and "its aliases best are removed" in removed.reason
    ckpts.expire(dry_run=False)
    assert live(ckpts) == [5]


def test_older_than_counts_from_the_last_log(ckpts: Store) -> None:
    ckpts.retain("ckpt", keep_last=1, older_than="1h")
    assert plan(ckpts).expired == []  # everything is young
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    assert [d.spec for d in plan(ckpts, at=later).expired] == ["ckpt:v0", "ckpt:v2", "ckpt:v3", "ckpt:v4"]
    ckpts.log(b"checkpoint 0", name="ckpt")  # logged again: the latest, so the one kept
    assert [d.spec for d in plan(ckpts, at=later).expired] == ["ckpt:v2", "ckpt:v3", "ckpt:v4", "ckpt:v5"]


def test_a_policy_that_would_expire_every_version_is_refused(ckpts: Store, listing) -> None:
    before = listing(ckpts)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    greedy = RetentionPolicy.parse({"older_than": "1h", "keep_aliased": False})
    with pytest.raises(InvalidInputError, match="would expire every one of the 6 versions of ckpt"):
        set_policy(ckpts, "ckpt", greedy, at=later)  # nothing is set
    assert listing(ckpts) == before and ckpts.retention() == {}
    ckpts.retain("ckpt", older_than="1h", keep_aliased=False)  # nothing is old yet: accepted
    report = plan(ckpts, at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))
    assert report.expired == [] and report.refused[0].startswith("ckpt: the policy")
    expire(ckpts, dry_run=False, at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))
    assert live(ckpts) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("kwargs, message", [
    ({}, "says neither keep_last nor older_than"),
    ({"keep_last": 0}, "keep_last must be a whole number of at least 1"),
    ({"older_than": "soon"}, "is not a duration"),
    ({"older_than": "-3d"}, "is in the past"),
    ({"keep_last": 1, "keep_tagged": ["b@d"]}, "tag 'b@d' is not allowed"),
])
def test_malformed_policies_are_refused(file_store: Store, kwargs, message) -> None:
    file_store.log(b"x", name="ckpt")
    with pytest.raises(InvalidInputError, match=message):
        file_store.retain("ckpt", **kwargs)
    assert file_store.settings() == {}


def test_a_ttl_expires_a_version_unless_an_alias_points_at_it(ckpts: Store) -> None:
    v3 = ckpts.get("ckpt:v3").set_ttl("1h")
    assert v3.expires_at is not None and ckpts.get("ckpt:v3").expires_at == v3.expires_at
    ckpts.get("ckpt:v1").set_ttl(3600)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    report = plan(ckpts, at=later)
    assert [(d.spec, d.reason.startswith("its TTL passed at")) for d in report.expired] == [("ckpt:v3", True)]
    assert report.kept[0].spec == "ckpt:v1" and "alias best points at it" in report.kept[0].reason
    expire(ckpts, dry_run=False, at=later)
    assert live(ckpts) == [0, 1, 2, 4, 5]
    deleted = ckpts.get("ckpt:v1").history()  # v1 is kept
    assert deleted[-1].kind == "expiry.set"
    assert ckpts.get("ckpt:v2").set_ttl(None).expires_at is None


@pytest.mark.parametrize("ttl, message", [("-1d", "is in the past"), (0, "is not in the future"), ("tomorrow", "not a duration"),
                                          ("99999d", "longer than 100 years")])
def test_a_ttl_in_the_past_or_malformed_is_refused(file_store: Store, listing, ttl, message) -> None:
    v = file_store.log(b"x", name="ckpt")
    before = listing(file_store)
    with pytest.raises(InvalidInputError, match=message):
        v.set_ttl(ttl)
    with pytest.raises(InvalidInputError, match=message):
        file_store.log(b"y", name="ckpt", ttl=ttl)
    assert listing(file_store) == before


def test_plait_retain_ttl_and_gc(ckpts: Store, store_cli) -> None:
    out = store_cli(ckpts, "retain", "ckpt", "--keep-last", "2", "--keep-tagged", "keep").output.splitlines()
    assert out[0] == "ckpt: keep the last 2; keep aliased; keep tagged keep; expire the rest"
    assert "  gc --delete would expire ckpt:v3: retention: not among the last 2" in out
    assert json.loads(store_cli(ckpts, "--json", "retain").output) == {"ckpt": {"keep_last": 2, "keep_tagged": ["keep"]}}
    assert store_cli(ckpts, "ttl", "ckpt:v4", "30d").output.startswith("ckpt:v4 expires ")
    dry = store_cli(ckpts, "gc").output.splitlines()
    assert dry[:2] == ["would expire ckpt:v0: retention: not among the last 2",
                       "would expire ckpt:v3: retention: not among the last 2"]
    assert "kept ckpt:v1: retention: not among the last 2, but alias best points at it" in dry
    assert live(ckpts) == [0, 1, 2, 3, 4, 5]
    done = json.loads(store_cli(ckpts, "--json", "gc", "--delete", "--grace", "0").output)
    assert [d["spec"] for d in done["retention"]["expired"]] == ["ckpt:v0", "ckpt:v3"] and live(ckpts) == [1, 2, 4, 5]
    expired = [h for h in ckpts.find(name="ckpt", deleted=True) if h.deleted]
    assert [str(h.history()[-1]).split("  ")[-2] for h in expired] == ["deleted (retention: not among the last 2)"] * 2
    store_cli(ckpts, "retain", "ckpt", "--clear")
    assert ckpts.retention() == {}


@pytest.mark.parametrize("args, message", [
    (["retain", "ckpt"], "says neither keep_last nor older_than"),
    (["retain", "ckpt", "--keep-last", "0"], "keep_last must be a whole number"),
    (["retain", "--keep-last", "3"], "give the artifact NAME"),
    (["ttl", "ckpt:v0", "--", "-2d"], "is in the past"),
    (["ttl", "ckpt:v0"], "give a DURATION"),
    (["config", "retention", '{"ckpt": {"keep_last": -1}}'], "keep_last must be a whole number"),
])
def test_bad_retention_input_is_one_line_and_changes_nothing(ckpts: Store, store_cli, listing, args, message) -> None:
    before = listing(ckpts)
    result = store_cli(ckpts, *args, code=2)
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert listing(ckpts) == before


def test_a_hand_written_retention_setting_that_does_not_parse_expires_nothing(file_store: Store) -> None:
    from plait.base.ids import new_ulid, utcnow
    from plait.formats import records as R

    for i in range(3):
        file_store.log(f"{i}".encode(), name="ckpt")
    event = R.Event(id=new_ulid(), kind=R.SETTING_SET, time=utcnow(),
                    data={"key": "retention", "value": {"ckpt": {"keep_last": 0}}, "old": None})
    file_store.append_event(event)  # as a writer who bypassed plait would
    report = expire(file_store, dry_run=False)
    assert report.expired == [] and "cannot be read" in report.refused[0] and live(file_store) == [0, 1, 2]
