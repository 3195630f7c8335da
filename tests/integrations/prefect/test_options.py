"""``track(flow, ...)`` options: what is logged or skipped, names, aliases, types, the size threshold;
and the clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import flow, task

import plait
from plait.integrations.prefect import TrackError, track

from .conftest import task_runs


@task
def split(n: int) -> dict:
    Path("train.csv").write_text("t\n" * n)
    Path("test.csv").write_text("e\n")
    return {"train": Path("train.csv"), "test": Path("test.csv"), "rows": n}


@task
def pair(n: int) -> tuple:
    Path("x.bin").write_bytes(b"x" * n)
    return Path("x.bin"), n


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def total(values: list[int], secret: str, lr: float) -> int:
    return sum(values)


def test_dict_and_tuple_outputs_are_one_artifact_per_item_named_task_dot_key(store):
    @track
    @flow
    def items() -> tuple:
        return split(3), pair(2)

    items()

    [s] = task_runs(store, "split")
    assert s.summary["outputs"] == {"split.train": "split.train:v0", "split.test": "split.test:v0"}
    assert s.summary["values"] == {"split.rows": 3}
    assert store.get("split.train").read_bytes("train.csv") == b"t\nt\nt\n"
    [p] = task_runs(store, "pair")
    assert p.summary["outputs"] == {"pair.0": "pair.0:v0"} and p.summary["values"] == {"pair.1": 2}


def test_names_aliases_types_and_output_filters_apply(store):
    @track(names={"split.train": "train-set"}, aliases={"split.train": ["gold"], "pair.0": "blob"},
           types={"split.train": "dataset", "pair.0": "model"}, skip_outputs=["split.test"])
    @flow
    def named() -> None:
        split(1)
        pair(1)

    named()

    train = store.get("train-set:gold")
    assert (train.spec, train.type) == ("train-set:v0", "dataset")
    assert store.get("pair.0:blob").type == "model"
    with pytest.raises(plait.NotFoundError):
        store.get("split.test")


def test_parameters_small_ones_recorded_large_ones_artifacts_skipped_ones_absent(store):
    @track(max_param_bytes=16, skip_params=["secret"], params=["values", "total.lr", "n"])
    @flow
    def sums(n: int) -> int:
        return total(numbers(n), "hunter2", 0.1)

    assert sums(20) == 190

    [run] = task_runs(store, "total")
    assert run.config == {"lr": 0.1}  # values: too large; secret: skipped
    [numbers_run] = task_runs(store, "numbers")
    assert run.summary["inputs"] == {"values": "numbers:v0"}  # the same JSON bytes link the two tasks
    assert [v.spec for v in run.inputs] == ["numbers:v0"] and numbers_run.outputs[0].spec == "numbers:v0"
    assert json.loads(store.get("numbers:v0").read_bytes("value.json")) == list(range(20))
    assert run.summary["values"] == {"total": 190}


def test_track_refuses_what_is_not_a_flow_or_task():
    def plain() -> None: ...

    with pytest.raises(TrackError, match=r"not function: put @track above @flow or @task"):
        track(plain)
    with pytest.raises(TrackError, match="not int: pass the object made by @flow or @task"):
        track(3)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"names": {"train": "bad name"}}, plait.InvalidNameError, "artifact name 'bad name' is not allowed"),
        ({"aliases": {"train": ["v3"]}}, plait.InvalidNameError, "'latest' and version numbers"),
        ({"aliases": {"train": "latest"}}, plait.InvalidNameError, "'latest' and version numbers"),
        ({"types": {"train": ""}}, plait.InvalidNameError, "artifact type must be a non-empty string"),
        ({"skip_params": "secret"}, TrackError, r"skip_params takes a list of names.*skip_params=\['secret'\]"),
        ({"outputs": [""]}, TrackError, "outputs takes parameter or output names"),
        ({"max_param_bytes": -1}, TrackError, "max_param_bytes must be a whole number"),
        ({"store": 42}, TrackError, "store must be a plait.Store or a URL, not int"),
    ],
    ids=["name", "alias-version", "alias-latest", "type", "bare-string", "empty-key", "size", "store"],
)
def test_bad_options_are_refused_when_decorating(options, error, message):
    with pytest.raises(error, match=message):
        track(**options)


def test_a_returned_draft_keeps_its_own_name_unless_the_options_rename_it(store):
    @task
    def report(stage: str) -> plait.Artifact:
        return plait.Artifact(f"metrics-{stage}", type="result").add_json({"stage": stage}, "metrics.json")

    @track(names={"report": "renamed"})
    @flow
    def renamed() -> None:
        report("b")

    @track
    @flow
    def reports() -> None:
        report("a")

    reports()
    renamed()

    assert json.loads(store.get("metrics-a").read_bytes("metrics.json")) == {"stage": "a"}
    assert store.get("renamed").type == "result"
