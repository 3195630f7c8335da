"""The lineage graph: twenty stages of fine-tuning with branches and a backtrack, depth,
cycles, run roots, rebuilding the index, and every export format."""

from __future__ import annotations

import json
import os

import pytest
from ulid import ULID

import plait
from plait.formats import records as R

STAGES, BRANCHES, BACKTRACK_STAGE, BACKTRACK_TO = 20, 3, 12, 9


pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


def fine_tune(store: plait.Store) -> dict:
    """Twenty stages; each tries three branches from the chosen model, one is continued.

    Stage 12 backtracks: it starts again from stage 9's chosen model, so stages 10 and 11 are
    off the final model's path.
    """
    with plait.run("download", store=store) as download:
        base = download.log(b"a large corpus", name="base", type="dataset")
        pretrained = download.log(b"pretrained weights", name="pretrained", type="model")
    with plait.run("prepare", store=store) as prepare:
        prepare.use(base)
        data = prepare.log(b"the fine-tuning set", name="ft-data", type="dataset")
    chosen: list[tuple[str, str]] = []  # (run id, model spec) continued at each stage
    every_model: list[str] = []
    for stage in range(STAGES):
        start = pretrained.spec if stage == 0 else chosen[-1][1]
        if stage == BACKTRACK_STAGE:
            start = chosen[BACKTRACK_TO][1]
        tried = []
        for branch in range(BRANCHES):
            with plait.run(f"stage-{stage:02d}-b{branch}", store=store, config={"lr": 10.0 ** -(branch + 3)}) as run:
                run.use(data)
                run.use(start)
                model = run.log(f"weights {stage}.{branch}".encode(), name="model", type="model")
            tried.append((run.id, model.spec))
            every_model.append(model.spec)
        chosen.append(tried[stage % BRANCHES])
    return {"chosen": chosen, "models": every_model, "download": download.id, "prepare": prepare.id}


@pytest.fixture(scope="module", params=["file", "memory"])
def tuned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[plait.Store, dict]:
    """The twenty-stage store, built once per backend for the read-only tests below."""
    from plait.plugins import reset_plugin_manager

    url = str(tmp_path_factory.mktemp("tuned") / "store") if request.param == "file" else f"memory://tuned-{ULID()}"
    store = plait.Store(url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "1")
        mp.setenv("PLAIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        reset_plugin_manager()
        made = fine_tune(store)
    reset_plugin_manager()
    return store, made


def test_twenty_stages_the_final_model_holds_exactly_the_stages_on_its_path(tuned):
    store, made = tuned
    final_run, final_model = made["chosen"][-1]
    graph = plait.lineage(final_model, direction="upstream", store=store)

    on_path = [s for s in range(STAGES) if not BACKTRACK_TO < s < BACKTRACK_STAGE]
    expected_runs = {made["chosen"][s][0] for s in on_path} | {made["download"], made["prepare"]}
    assert set(graph.runs) == expected_runs
    assert sorted(r.name for r in graph.runs.values() if r.name.startswith("stage")) == [
        f"stage-{s:02d}-b{s % BRANCHES}" for s in on_path
    ]
    expected_versions = {made["chosen"][s][1] for s in on_path} | {"base:v0", "pretrained:v0", "ft-data:v0"}
    assert set(graph.versions) == expected_versions
    # the path itself: each stage used the model the previous stage on the path produced
    for before, after in zip(on_path, on_path[1:]):
        assert (made["chosen"][before][1], f"run:{made['chosen'][after][0]}", "used") in graph.edges
    assert (f"run:{final_run}", final_model, "produced") in graph.edges
    assert graph.root == final_model == f"model:v{STAGES * BRANCHES - 1 - (BRANCHES - 1 - (STAGES - 1) % BRANCHES)}"


def test_downstream_of_a_dataset_lists_every_model_built_from_it(tuned):
    store, made = tuned
    graph = plait.lineage("ft-data:v0", direction="downstream", store=store)
    models = {k for k, v in graph.versions.items() if v.type == "model"}
    assert models == set(made["models"]) and len(models) == STAGES * BRANCHES
    assert "base:v0" not in graph.versions and "pretrained:v0" not in graph.versions
    assert set(plait.lineage("base:v0", direction="downstream", store=store).versions) == {"base:v0", "ft-data:v0", *models}


def test_depth_counts_runs(tuned):
    store, made = tuned
    final_run, final_model = made["chosen"][-1]
    one = plait.lineage(final_model, depth=1, store=store)
    assert set(one.runs) == {final_run}
    assert set(one.versions) == {final_model, made["chosen"][-2][1], "ft-data:v0"}
    assert set(plait.lineage(final_model, depth=0, store=store).versions) == {final_model}
    assert len(plait.lineage(final_model, depth=2, store=store).runs) == 3  # two stages and prepare


def test_both_directions_and_a_run_as_the_root(small):
    store, prepare, train = small
    both = store.lineage("clean:v0", direction="both")
    assert set(both.runs) >= {prepare.id, train.id} and {"raw:v0", "clean:v0", "model:v0"} <= set(both.versions)
    from_run = store.lineage(train.id, direction="downstream")
    assert from_run.root == f"run:{train.id}" and set(from_run.versions) == {"model:v0"}
    up = store.lineage(f"run:{train.id}", direction="upstream", depth=1)
    assert set(up.versions) == {"clean:v0"} and set(up.runs) == {train.id}


def test_runs_that_contain_the_graphs_runs_are_parent_edges(store):
    with plait.run("flow", store=store) as flow:
        with plait.run("task") as task:
            task.log(b"out", name="out")
    graph = store.lineage("out:v0")
    assert set(graph.runs) == {flow.id, task.id}
    assert (f"run:{flow.id}", f"run:{task.id}", "parent") in graph.edges


def test_rebuilding_the_index_from_scratch_gives_the_same_graph(file_store):
    made = fine_tune(file_store)
    file_store.set_alias(made["chosen"][-1][1], "best")
    before = {d: file_store.lineage("model:best", direction=d).to_json() for d in ("upstream", "both")}
    down = file_store.lineage("ft-data:v0", direction="downstream").to_json()
    file_store.catalog.close()
    file_store._catalog = None
    os.remove(os.path.join(file_store.cache_dir, "index.sqlite"))
    fresh = plait.Store(file_store.url)
    assert {d: fresh.lineage("model:best", direction=d).to_json() for d in ("upstream", "both")} == before
    fresh.reindex()
    assert fresh.lineage("ft-data:v0", direction="downstream").to_json() == down


def test_a_hand_made_cycle_in_the_store_does_not_hang_queries(store):
    store.init()
    a, b = str(ULID()), str(ULID())
    record = {"format": 1, "type": "dataset", "digest": "ab" * 16, "size": 0, "file_count": 0, "description": "",
              "metadata": {}, "algorithm": "xxh3-128", "origin": None}
    steps = [  # each run uses the other's output before it logs its own: a true cycle
        (R.RUN_STARTED, {"id": a, "name": "a", "kind": "manual"}, a),
        (R.RUN_STARTED, {"id": b, "name": "b", "kind": "manual"}, b),
        (R.VERSION_USED, {"name": "x", "number": 0}, a),
        (R.VERSION_USED, {"name": "y", "number": 0}, b),
        (R.VERSION_LOGGED, {**record, "name": "y", "number": 0, "created_by": a}, a),
        (R.VERSION_LOGGED, {**record, "name": "x", "number": 0, "created_by": b}, b),
    ]
    for second, (kind, data, run) in enumerate(steps):
        when = f"2024-05-01T12:00:{second:02d}.000000Z"  # distinct times: the order of the steps above
        data = {**data, "created_at": when} if kind == R.VERSION_LOGGED else data
        event = R.Event(id=str(ULID()), kind=kind, time=when, user="crafted", run=run, data=data)
        store.backend.create(event.key, R.encode(event))
        if event.kind == R.VERSION_LOGGED:  # a version is its record; the event only announces it
            store.backend.create(R.version_key(event.data["name"], 0), R.encode(R.VersionRecord.model_validate(event.data)))
    for direction in ("upstream", "downstream", "both"):
        graph = store.lineage("y:v0", direction=direction)
        assert set(graph.runs) == {a, b} and set(graph.versions) == {"x:v0", "y:v0"}
        assert graph.to_tree().count("y:v0") == 2 * (1 + (direction == "both"))  # the root, then "(see above)"
    deep = store.lineage("y:v0", producers="all")
    assert set(deep.versions) == {"x:v0", "y:v0"} and "flowchart LR" in deep.to_mermaid() and deep.to_dot()


def test_bad_lineage_queries_say_what_is_allowed(store):
    store.log(b"x", name="x")
    with pytest.raises(plait.InvalidInputError, match="direction must be one of upstream, downstream, both, not 'sideways'"):
        store.lineage("x:v0", direction="sideways")
    with pytest.raises(plait.InvalidInputError, match="depth must be 0 or more, not -1"):
        store.lineage("x:v0", depth=-1)
    with pytest.raises(plait.NotFoundError, match="has no version v7"):
        store.lineage("x:v7")
    with pytest.raises(plait.NotFoundError, match="no run '01ARZ3NDEKTSV4RRFFQ69G5FAV'"):
        store.lineage("run:01ARZ3NDEKTSV4RRFFQ69G5FAV")


@pytest.fixture
def small(store):
    store.log(b"raw", name="raw")
    with plait.run("prepare", store=store) as prepare:
        prepare.use("raw:v0")
        prepare.log(b"clean", name="clean")
    with plait.run("train", store=store) as train:
        train.use("clean:v0")
        train.log(b"model", name="model", aliases=["best"])
    return store, prepare, train


def test_the_graph_exports_as_json(small):
    store, prepare, train = small
    data = json.loads(store.lineage("model:best").to_json())
    assert data["root"] == "model:v0" and data["direction"] == "upstream"
    assert {n["id"] for n in data["nodes"] if n["type"] == "version"} == {"raw:v0", "clean:v0", "model:v0"}
    assert {"source": "clean:v0", "target": f"run:{train.id}", "kind": "used"} in data["edges"]
    assert {"source": f"run:{prepare.id}", "target": "clean:v0", "kind": "produced"} in data["edges"]


def test_the_graph_exports_as_mermaid_dot_and_a_tree(small):
    store, prepare, train = small
    graph = store.lineage("model:best")
    ids = graph._ids()
    mermaid = graph.to_mermaid()
    assert mermaid.startswith("flowchart LR\n")
    assert f'{ids["model:v0"]}(["model:v0 (best)"])' in mermaid
    assert f"{ids['clean:v0']} --> {ids['run:' + train.id]}" in mermaid
    dot = graph.to_dot()
    assert dot.startswith("digraph lineage {") and f"{ids['run:' + prepare.id]} -> {ids['clean:v0']};" in dot
    tree = graph.to_tree().splitlines()
    assert tree[0] == "model:v0 (best)"
    assert tree[1].startswith("└─ <- train [manual, finished]") and tree[2].strip() == "└─ <- clean:v0"


def test_the_graph_exports_as_openlineage_run_events(small):
    store, prepare, train = small
    events = {e["run"]["runId"]: e for e in store.lineage("model:best").to_openlineage(namespace="team")}
    assert events[train.id]["eventType"] == "COMPLETE" and events[train.id]["job"] == {"namespace": "team", "name": "train"}
    assert events[train.id]["inputs"] == [{"namespace": "team", "name": "clean:v0"}]
    assert events[train.id]["outputs"] == [{"namespace": "team", "name": "model:v0"}]


def test_a_nested_run_inherits_what_the_runs_around_it_used_before_it_started(store):
    """A Lightning fit inside a Prefect task trains on the task's data: the model's upstream
    reaches the data through the task, and what the task used only afterwards is not upstream."""
    data, later = store.log(b"rows", name="data"), store.log(b"report template", name="template")
    with plait.run("task", store=store) as task:
        task.use(data.spec)
        with plait.run("fit", store=store) as fit:
            model = fit.log(b"weights", name="model", type="model")
        task.use(later.spec)

    up = store.lineage(model.spec)
    assert set(up.versions) == {"model:v0", "data:v0"}
    assert (f"run:{task.id}", f"run:{fit.id}", "parent") in up.edges
    assert ("data:v0", f"run:{task.id}", "used") in up.edges
    assert "data:v0" in up.to_tree() and later.spec not in up.to_tree()

    down = store.lineage(data.spec, direction="downstream")
    assert "model:v0" in down.versions and fit.id in down.runs
    assert "model:v0" not in store.lineage(later.spec, direction="downstream").versions
