"""The natural sequence — track a dataset, track one derived from it, load that back — in the
implicit run, in one ``with plait.run()``, and in a plain script: it never raises, and each
records what was done, with the exact lineage."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("datasets")

from plait_pipelines import NATURAL_SEQUENCE, down, labels, natural_sequence, run_id, specs, up

import plait
from plait.tracking.run import end_implicit_runs


def assert_rolled_over(store: plait.Store, name: str) -> None:
    """The implicit run logged ``a``, then loaded ``b`` made from ``a``: a second segment took the use."""
    first, second = store.get_run(run_id(store, f"{name}#1")), store.get_run(run_id(store, f"{name}#2"))
    assert first.info["implicit"] is True and second.info["previous"] == first.id
    assert first.status == "finished" and specs(first.outputs) == ["a:v0"] and first.inputs == []
    assert specs(second.inputs) == ["b:v0"] and second.outputs == []
    assert up(store, "c:v0") == ({"c:v0", "b:v0", "a:v0"}, {"transform-c#1", "transform-b#1", f"{name}#1"})
    assert down(store, "a:v0") == (
        {"a:v0", "b:v0", "c:v0"}, {"transform-b#1", "transform-c#1", f"{name}#2", f"{name}#1"})
    graph = store.lineage("b:v0", direction="downstream")
    assert (f"run:{first.id}", f"run:{second.id}", "previous") in graph.edges and "-.->" in graph.to_mermaid()


def test_in_the_implicit_run(store):
    natural_sequence()
    implicit = plait.active_run()
    assert implicit is not None and implicit.implicit and implicit.info.get("previous")
    assert_rolled_over(store, implicit.name)
    plait.log(b"notes", name="notes")  # goes on in the current segment
    assert store.get("notes:v0").created_by == implicit.id
    end_implicit_runs()
    assert store.get_run(implicit.id).status == "finished"


def test_in_one_explicit_run(store):
    with plait.run("explore") as run:
        natural_sequence()
    names = labels(store)
    assert sorted(names.values()) == ["explore#1", "transform-b#1", "transform-c#1"]
    explore = store.get_run(run.id)
    assert specs(explore.outputs) == ["a:v0"] and specs(explore.inputs) == ["b:v0"]  # the use is recorded: a loop
    assert [names[c.id] for c in explore.children] == ["transform-b#1", "transform-c#1"]
    assert up(store, "a:v0") == ({"a:v0"}, {"explore#1"})  # a was logged before b existed
    assert up(store, "c:v0") == ({"c:v0", "b:v0", "a:v0"}, {"transform-c#1", "transform-b#1", "explore#1"})
    assert down(store, "a:v0") == ({"a:v0", "b:v0", "c:v0"}, {"explore#1", "transform-b#1", "transform-c#1"})
    assert "a:v0" in store.lineage("a:v0", direction="both").to_tree()


def test_in_a_plain_script(store, tmp_path):
    script = tmp_path / "prepare_reviews.py"
    script.write_text(NATURAL_SEQUENCE + "\nimport plait\nprint(plait.active_run().name)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "prepare_reviews"
    assert_rolled_over(store, "prepare_reviews")
    assert {r.status for r in store.runs()} == {"finished"}  # the last segment ended with the process
