"""Transforms are lineage: a derived dataset links to the version it came from through a
``huggingface.transform`` run that records the chain."""

from __future__ import annotations

import datasets

import plait
from plait.integrations.huggingface import TRANSFORM_KIND, load, load_dataset, track


def add_length(row):
    return {"length": len(row["text"])}


def not_empty(row):
    return row["length"] > 0


def test_three_step_chain_is_a_transform_run_between_the_versions(store, reviews):
    with plait.run("prep", store=store):
        track(reviews, "raw")
    with plait.run("clean", store=store) as outer:
        raw = load("raw")
        clean = raw.map(add_length).filter(not_empty).select([3, 0, 1])
        track(clean, "clean", aliases=["candidate"])
    graph = plait.lineage("clean:candidate", store=store)
    (run_node,) = graph.producers("clean:v0")
    run = graph.runs[run_node[4:]]
    assert (run.kind, run.name, run.parent) == (TRANSFORM_KIND, "transform-clean", outer.id)
    into_run = sorted((src, kind) for src, dst, kind in graph.edges if dst == run_node)
    assert into_run == [("raw:v0", "used"), (f"run:{outer.id}", "parent")]
    assert (run_node, "clean:v0", "produced") in graph.edges
    steps = run.config["transforms"]
    assert [s["transform"] for s in steps] == ["map", "filter", "select"]
    assert steps[0]["args"]["function"] == f"{__name__}.add_length"
    assert steps[1]["args"]["function"] == f"{__name__}.not_empty"
    assert steps[2]["args"] == {"indices": [3, 0, 1]}
    assert steps[0]["input"] == [raw._fingerprint] and steps[2]["output"] == clean._fingerprint
    assert [s["output"] for s in steps[:2]] == [s["input"][0] for s in steps[1:]]
    assert run.config["sources"] == ["raw:v0"]
    assert load("clean:candidate", store=store)["text"] == ["meh", "great film", "boring"]


def test_chain_stops_at_the_nearest_tracked_version(store, reviews):
    with plait.run("prep", store=store):
        track(reviews, "raw")
        lengths = track(reviews.map(add_length), "lengths")
        track(lengths.filter(not_empty), "non-empty")
    run = store.get("non-empty").produced_by
    assert [v.spec for v in run.inputs] == ["lengths:v0"]
    assert [s["transform"] for s in run.config["transforms"]] == ["filter"]


def test_concatenation_uses_both_sources(store, reviews):
    with plait.run("prep", store=store):
        first = track(reviews.select([0, 1]), "first")
        second = track(reviews.select([2, 3]), "second")
        track(datasets.concatenate_datasets([first, second]), "both")
    run = store.get("both").produced_by
    assert run.kind == TRANSFORM_KIND
    assert sorted(v.spec for v in run.inputs) == ["first:v0", "second:v0"]
    concat = next(s for s in run.config["transforms"] if s["transform"] == "concatenate_datasets")
    assert concat["input"] == [first._fingerprint, second._fingerprint]


def test_dataset_dict_transforms_are_followed_per_split(store, reviews):
    dd = datasets.DatasetDict({"train": reviews.select(range(4)), "test": reviews.select([4, 5])})
    with plait.run("prep", store=store):
        track(dd, "splits")
        track(dd.map(add_length), "splits-len")
    run = store.get("splits-len").produced_by
    assert [v.spec for v in run.inputs] == ["splits:v0"]
    assert [s["transform"] for s in run.config["transforms"]] == ["map", "map"]


def test_untracked_origin_means_a_plain_log(store, reviews):
    with plait.run("prep", store=store) as prep:
        track(reviews.map(add_length), "lengths")
    assert store.get("lengths").created_by == prep.id


def test_logging_a_derived_dataset_through_the_hook_records_the_source(store, reviews):
    # what a Prefect task returning a Dataset does: plait.log(ds) inside the task's run
    with plait.run("prep", store=store):
        track(reviews, "raw")
    with plait.run("task", store=store) as task:
        derived = load("raw").filter(lambda r: r["label"] == 1)
    with plait.run("task2", store=store) as task2:
        version = plait.log(derived, "positives")
    assert version.created_by == task2.id and task.id != task2.id
    assert [v.spec for v in task2.inputs] == ["raw:v0"]
    assert [s["transform"] for s in version.metadata["huggingface"]["transforms"]] == ["filter"]


def test_load_dataset_uses_the_source_files_by_digest(store, tmp_path):
    (tmp_path / "reviews.csv").write_text("text,label\ngreat,1\n,0\nboring,0\n")
    with plait.run("ingest", store=store):
        plait.log(str(tmp_path / "reviews.csv"), "reviews-csv")
    with plait.run("prep", store=store) as prep:
        ds = load_dataset("csv", data_files=str(tmp_path / "reviews.csv"), cache_dir=str(tmp_path / "hf"))
        clean = ds.filter(lambda r: bool(r["text"]))
        track(clean, "reviews-clean")
    assert [v.spec for v in prep.inputs] == ["reviews-csv:v0"]  # matched by content, not by name
    run = store.get("reviews-clean").produced_by
    assert run.kind == TRANSFORM_KIND and [v.spec for v in run.inputs] == ["reviews-csv:v0"]
    assert [s["transform"] for s in run.config["transforms"]] == ["filter"]
    assert load("reviews-clean", split="train", store=store)["text"] == ["great", "boring"]


def test_load_dataset_with_several_files_is_one_input(store, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"x": 1}\n')
    (folder / "b.jsonl").write_text('{"x": 2}\n')
    with plait.run("prep", store=store) as prep:
        ds = load_dataset("json", data_files={"train": str(folder / "a.jsonl"), "test": str(folder / "b.jsonl")},
                          cache_dir=str(tmp_path / "hf"))
    assert list(ds) == ["train", "test"]
    (version,) = prep.inputs
    assert version.spec == "parts:v0" and [e.path for e in version.files()] == ["a.jsonl", "b.jsonl"]
