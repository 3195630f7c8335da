"""A dataset's fingerprint is a fast identity: logging it again hashes and writes nothing."""

from __future__ import annotations

import plait
from plait.integrations.huggingface import track


def test_same_fingerprint_again_costs_no_hashing(store, reviews, work):
    with plait.run("prep", store=store):
        track(reviews, "reviews")
        first = (work["written"].calls, work["hashed"].calls)
        track(reviews, "reviews", aliases=["again"])
        plait.log(reviews, "reviews")
    assert first == (1, 3)  # one dataset written: dataset_info.json, state.json, one shard
    assert (work["written"].calls, work["hashed"].calls) == first
    assert [v.spec for v in store.versions("reviews")] == ["reviews:v0"]
    assert "again" in store.get("reviews:v0").aliases


def test_different_fingerprints_with_equal_content_are_hashed_but_land_on_one_version(store, reviews, work):
    copy = reviews.select(range(len(reviews)))
    with plait.run("prep", store=store):
        track(reviews, "reviews")
        track(copy, "reviews")
    assert work["written"].calls == 2
    assert [v.spec for v in store.versions("reviews")] == ["reviews:v0"]


def test_a_changed_dataset_is_not_taken_for_the_old_one(store, reviews):
    renamed = reviews.rename_column("text", "review")
    with plait.run("prep", store=store):
        track(reviews, "reviews")
        track(renamed, "reviews")
    assert [v.metadata["huggingface"]["columns"][0] for v in store.versions("reviews")] == ["text", "review"]


def test_new_notes_on_a_dataset_logged_before_are_an_update(store, reviews, work):
    with plait.run("prep", store=store) as run:
        plait.log(reviews, "reviews")
        plait.log(reviews, "reviews", description="checked", metadata={"reviewed": True})  # known by its fingerprint
        plait.log(store.get("reviews:v0"), metadata={"split": "train"})  # a version logged as is
    assert work["written"].calls == 1
    v = store.get("reviews:v0")
    assert v.description == "checked" and v.metadata["reviewed"] is True and v.metadata["split"] == "train"
    updates = [h for h in v.history() if h.kind == "version.updated"]
    assert [u.run for u in updates] == [run.id, run.id] and updates[1].detail["new"] == {"metadata": {**v.metadata}}
