"""ArtifactVersion: reading files, metadata updates and their history, deletion."""

from __future__ import annotations

import json

import pytest

from plait import Artifact, ArtifactVersion, NotFoundError, Store, StoreError


@pytest.fixture
def v0(store: Store) -> ArtifactVersion:
    draft = Artifact("ds", description="raw", metadata={"source": "lab", "n": 2})
    return store.log(draft.add_bytes(b"id,label\n1,cat\n", "labels.csv").add_bytes(b"\x89PNG", "img/1.png"), aliases=["candidate"])


def test_a_version_exposes_what_was_logged(v0: ArtifactVersion) -> None:
    assert (v0.spec, v0.version, v0.name, v0.number, str(v0)) == ("ds:v0", "v0", "ds", 0, "ds:v0")
    assert (v0.size, v0.file_count, v0.description, dict(v0.metadata)) == (19, 2, "raw", {"source": "lab", "n": 2})
    assert v0.aliases == ("latest", "candidate")
    assert v0.created_at.endswith("Z") or "+" in v0.created_at
    assert v0.produced_by is not None and v0.produced_by.id == v0.created_by
    d = v0.to_dict()
    assert json.loads(json.dumps(d)) == d and d["spec"] == "ds:v0" and d["digest"] == v0.digest


def test_files_open_and_read(v0: ArtifactVersion) -> None:
    assert [(e.path, e.size) for e in v0.files()] == [("img/1.png", 4), ("labels.csv", 15)]
    with v0.open("labels.csv") as f:
        assert f.read() == b"id,label\n1,cat\n"
    assert v0.read_bytes("img/1.png") == b"\x89PNG"
    assert v0.entry("./img//1.png").path == "img/1.png"
    assert v0.verify() == []


def test_versions_with_the_same_files_compare_by_digest(store: Store, v0: ArtifactVersion) -> None:
    copy = store.log(Artifact("copy").add_bytes(b"\x89PNG", "img/1.png").add_bytes(b"id,label\n1,cat\n", "labels.csv"))
    assert copy.digest == v0.digest
    assert [v.spec for v in store.find(digest=v0.digest, sort="created_at")] == ["ds:v0", "copy:v0"]
    assert store.get("ds:v0") == v0.refresh()


def test_update_merges_metadata_and_records_old_and_new(v0: ArtifactVersion) -> None:
    v = v0.update(metadata={"reviewed": True}, description="cleaned")
    assert dict(v.metadata) == {"source": "lab", "n": 2, "reviewed": True} and v.description == "cleaned"
    assert dict(v0.metadata) == {"source": "lab", "n": 2}  # a value: the old object is unchanged
    v = v.update(metadata={"only": 1}, replace=True)
    assert dict(v.metadata) == {"only": 1}
    assert v.store.get("ds:v0").metadata == {"only": 1}

    updates = [h for h in v.history() if h.kind == "version.updated"]
    assert [h.detail["new"] for h in updates] == [
        {"metadata": {"source": "lab", "n": 2, "reviewed": True}, "description": "cleaned"},
        {"metadata": {"only": 1}},
    ]
    assert updates[0].detail["old"] == {"metadata": {"source": "lab", "n": 2}, "description": "raw"}
    assert 'description: "raw" -> "cleaned"' in str(updates[0])


def test_an_update_that_changes_nothing_records_nothing(v0: ArtifactVersion) -> None:
    events = v0.store.backend.find("events")
    assert v0.update(metadata={"n": 2}, description="raw") == v0
    assert v0.store.backend.find("events") == events


def test_history_is_every_change_oldest_first(store: Store, v0: ArtifactVersion) -> None:
    v0.set_alias("production")
    v0.update(metadata={"reviewed": True})
    v0.remove_alias("candidate")
    store.log(Artifact("ds").add_bytes(b"new", "labels.csv"), aliases=["production"])
    history = v0.history()
    assert [h.kind for h in history] == ["version.logged", "alias.set", "alias.set", "version.updated", "alias.removed", "alias.set"]
    assert [h.time for h in history] == sorted(h.time for h in history)
    assert history[-1].detail == {"alias": "production", "number": 1, "old": 0}
    assert all(h.version.startswith("ds:v") and h.user for h in history)


def test_deleting_a_version(store: Store, v0: ArtifactVersion) -> None:
    v1 = store.log(Artifact("ds").add_bytes(b"v1", "x"))
    with pytest.raises(StoreError, match="still has aliases candidate; move them first or pass force=True"):
        v0.delete()
    v1.delete()
    assert store.get("ds").spec == "ds:v0"  # latest falls back to the newest live version
    with pytest.raises(NotFoundError, match="'ds' has no version v1"):
        store.get("ds:v1")
    v0.delete(force=True)
    with pytest.raises(NotFoundError, match="no artifact named 'ds'"):
        store.get("ds")
    assert store.log(Artifact("ds").add_bytes(b"v2", "x")).spec == "ds:v2"  # numbers are never reused
