"""Prefect pipelines as people run them: a failed flow rerun, an unchanged flow rerun with
submitted tasks, and a path handed from task to task. Each asserts the exact lineage."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("prefect")

from plait_pipelines import clean_train_evaluate, down, hand_off, labels, run_id, specs, submitted, up

import plait

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_a_failed_flow_rerun_credits_the_rerun_and_mints_no_duplicate(store, raw, tmp_path):
    Path("FAIL").write_text("down")
    with pytest.raises(RuntimeError, match="evaluation cluster is down"):
        clean_train_evaluate(raw)
    Path("FAIL").unlink()
    clean_train_evaluate(raw)

    names = labels(store)
    assert sorted(names.values()) == ["clean#1", "clean#2", "clean-train-evaluate#1", "clean-train-evaluate#2",
                                      "evaluate#1", "evaluate#2", "train#1", "train#2"]
    assert store.get_run(run_id(store, "clean-train-evaluate#1")).status == "failed"
    assert specs(store.versions("model")) == ["model:v0"] and specs(store.versions("clean")) == ["clean:v0"]

    model = store.get("model:latest")
    assert [names[r.id] for r in model.producers] == ["train#1", "train#2"]
    assert names[model.produced_by.id] == "train#2"  # the first train finished, but inside a failed flow
    assert [v.spec for v in store.get_run(run_id(store, "train#2")).outputs] == ["model:v0"]

    assert up(store, "model:v0") == ({"model:v0", "clean:v0", "raw:v0"}, {"train#2", "clean#2", "clean-train-evaluate#2"})
    assert up(store, "model:v0", producers="all") == (
        {"model:v0", "clean:v0", "raw:v0"},
        {"train#1", "train#2", "clean#1", "clean#2", "clean-train-evaluate#1", "clean-train-evaluate#2"})
    assert down(store, "raw:v0") == (
        {"raw:v0", "clean:v0", "model:v0"},
        {"clean#1", "clean#2", "train#1", "train#2", "evaluate#1", "evaluate#2", "clean-train-evaluate#1",
         "clean-train-evaluate#2"})
    # what evaluate#1 received, only train#1 had made by then: downstream shows both trains making model:v0
    edges = store.lineage("raw:v0", direction="downstream").edges
    assert {("run:" + run_id(store, f"train#{i}"), "model:v0", "produced") for i in (1, 2)} <= set(edges)

    mermaid = store.lineage("model:v0", producers="all").to_mermaid()
    assert "clean-train-evaluate [prefect.flow, failed]" in mermaid and "classDef failed" in mermaid


def test_rerunning_an_unchanged_flow_of_submitted_tasks_makes_no_new_versions(store):
    submitted(4)
    first = {v.spec: v.digest for v in store.versions("transform")}
    assert len(first) == 2 and len(set(first.values())) == 2  # four tasks, two contents, two versions
    submitted(4)
    assert {v.spec: v.digest for v in store.versions("transform")} == first
    for version in store.versions("transform"):
        assert len(version.producers) == 4  # two tasks of each flow run wrote it
    names = labels(store)
    assert {names[r] for r in store.lineage("transform:v0", direction="both").runs} <= {
        *(f"transform#{i}" for i in range(1, 9)), "submitted#1", "submitted#2"}


def test_a_path_handed_from_task_to_task_links_the_version_the_upstream_task_logged(store):
    with plait.run("seed", store=store) as seed:  # long before: an unrelated version with the same bytes
        seed.log(b"the same bytes as the old seed", name="seed")
    hand_off()

    names = labels(store)
    consume = store.get_run(run_id(store, "consume#1"))
    assert specs(consume.inputs) == ["export:v0"]  # not seed:v0, the oldest holder of those bytes
    assert up(store, "report:v0") == ({"report:v0", "export:v0"}, {"consume#1", "export#1", "hand-off#1"})
    assert down(store, "seed:v0") == ({"seed:v0"}, set())
    assert names[store.get("export:v0").produced_by.id] == "export#1"
