"""diff: added, removed and modified paths with sizes between two versions."""

from __future__ import annotations

import json

import plait
from plait import Artifact, Store


def test_diff_lists_added_removed_and_modified_paths(store: Store) -> None:
    store.log(Artifact("ds").add_bytes(b"same", "keep.txt").add_bytes(b"old!", "edit.txt").add_bytes(b"bye", "gone.txt"))
    store.log(Artifact("ds").add_bytes(b"same", "keep.txt").add_bytes(b"new content", "edit.txt").add_bytes(b"hi", "sub/new.txt"))
    d = plait.diff("ds:v0", "ds:v1", store=store)
    assert (d.old, d.new) == ("ds:v0", "ds:v1")
    assert d.added == [("sub/new.txt", 2)]
    assert d.removed == [("gone.txt", 3)]
    assert d.modified == [("edit.txt", 4, 11)]
    assert d.unchanged == 1 and d.changed
    assert str(d).splitlines() == [
        "ds:v0 -> ds:v1: 1 added, 1 removed, 1 modified, 1 unchanged",
        "+ sub/new.txt (2 B)", "- gone.txt (3 B)", "M edit.txt (4 B -> 11 B)",
    ]
    assert json.loads(json.dumps(d.to_dict())) == {
        "old": "ds:v0", "new": "ds:v1", "unchanged": 1,
        "added": [{"path": "sub/new.txt", "size": 2}], "removed": [{"path": "gone.txt", "size": 3}],
        "modified": [{"path": "edit.txt", "old_size": 4, "new_size": 11}],
        "metadata": {}, "description": None, "rows": {},
    }


def test_a_version_against_itself_or_equal_content_has_no_changes(store: Store) -> None:
    a = store.log(Artifact("a").add_bytes(b"x", "x"))
    store.log(Artifact("b").add_bytes(b"x", "x"))
    for d in (plait.diff(a, a, store=store), plait.diff("a:v0", "b", store=store)):
        assert not d.changed and d.unchanged == 1


def test_a_same_size_edit_is_modified(store: Store) -> None:
    store.log(Artifact("ds").add_bytes(b"aaaa", "x"))
    v1 = store.log(Artifact("ds").add_bytes(b"bbbb", "x"))
    assert plait.diff("ds:v0", v1, store=store).modified == [("x", 4, 4)]
