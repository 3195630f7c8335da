"""The lineage layout: data flows left to right, flows box their tasks, failed runs and deleted
versions hide unless asked, fan-outs cluster, cycles and big graphs still lay out."""

from __future__ import annotations

import re

import pytest

import plait
from plait.tracking.drawing import to_svg
from plait.tracking.layout import CLUSTER_MIN, DrawOptions, layout

pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


def flow_store(store: plait.Store) -> dict[str, object]:
    """A flow with three tasks (clean, train, evaluate), a failed attempt, and many checkpoints."""
    with plait.run("download", store=store) as dl:
        raw = dl.log(b"raw reviews", name="reviews", type="dataset")
    with plait.run("pipeline", store=store, kind="prefect.flow") as flow:
        with plait.run("clean", store=store, kind="prefect.task") as clean:
            clean.use(raw)
            data = clean.log(b"clean reviews", name="clean", type="dataset")
        with pytest.raises(RuntimeError), plait.run("train", store=store, kind="prefect.task") as failed:
            failed.use(data)
            raise RuntimeError("out of memory")
        with plait.run("train", store=store, kind="prefect.task") as train:
            train.use(data)
            checkpoints = [train.log(f"weights {i}".encode(), name="classifier", type="model") for i in range(12)]
            best = checkpoints[-1].set_alias("best")
        with plait.run("evaluate", store=store, kind="prefect.task") as evaluate:
            evaluate.use(best)
            evaluate.use(data)
            metrics = evaluate.log(b'{"accuracy": 0.9}', name="metrics", type="result")
    checkpoints[3].delete()
    return {"raw": raw, "data": data, "best": best, "metrics": metrics, "flow": flow.id, "failed": failed.id,
            "train": train.id, "evaluate": evaluate.id, "checkpoints": checkpoints}


def assert_left_to_right(lay) -> None:
    for route in lay.routes:
        source, target = lay.nodes[route.source], lay.nodes[route.target]
        assert source.x + source.w <= target.x, (route.source, route.target)
        assert route.points[0][0] <= route.points[-1][0]


def test_data_flows_left_to_right_inside_the_flows_box(file_store):
    marks = flow_store(file_store)
    lay = layout(file_store.lineage(marks["metrics"].spec, direction="both"))
    assert_left_to_right(lay)
    assert lay.crossings == 0
    column = {n: b.layer for n, b in lay.nodes.items()}
    assert column["reviews:v0"] < column[f"run:{marks['train']}"] < column["metrics:v0"]
    # the flow that only holds tasks is a box around them, not a node
    assert f"run:{marks['flow']}" not in lay.nodes
    (box,) = lay.groups
    assert box.run_id == marks["flow"] and box.title == "pipeline · prefect.flow"
    for member in (f"run:{marks['train']}", f"run:{marks['evaluate']}", "clean:v0", "metrics:v0"):
        b = lay.nodes[member]
        assert box.x < b.x and b.x + b.w < box.x + box.w and box.y < b.y and b.y + b.h < box.y + box.h, member
    outside = lay.nodes["reviews:v0"]
    assert outside.x + outside.w < box.x  # the input the flow read comes from outside its box


def test_failed_runs_and_deleted_versions_hide_unless_asked(file_store):
    marks = flow_store(file_store)
    graph = file_store.lineage(marks["data"].spec, direction="both")
    lay = layout(graph)
    assert f"run:{marks['failed']}" not in lay.nodes and "classifier:v3" not in lay.nodes
    assert lay.hidden == {"deleted": 1, "failed": 1}
    shown = layout(graph, DrawOptions(show_deleted=True, show_failed=True, cluster=False))
    assert shown.nodes[f"run:{marks['failed']}"].data["failed"] and shown.nodes["classifier:v3"].data["deleted"]
    assert shown.nodes["classifier:v3"].data["href"] == "/a/classifier"  # no page of its own any more
    svg = to_svg(shown)
    assert re.search(r'class="node run failed"[^>]*data-id="run:%s"' % marks["failed"], svg)
    assert 'class="node version deleted"' in svg and ">DELETED</text>" in svg


def test_a_large_fan_out_is_one_cluster_node(file_store):
    marks = flow_store(file_store)
    lay = layout(file_store.lineage(marks["data"].spec, direction="both"))
    cluster = lay.nodes[f"cluster:run:{marks['train']}:classifier"]
    # twelve checkpoints, one deleted (hidden), the best one is used and keeps its own node
    assert cluster.data["title"] == "10 checkpoints of classifier" and cluster.data["href"] == "/a/classifier"
    assert marks["best"].spec in lay.nodes
    assert not any(n.startswith("classifier:") for n in lay.nodes if n != marks["best"].spec)
    assert CLUSTER_MIN <= 10
    flat = layout(file_store.lineage(marks["data"].spec, direction="both"), DrawOptions(cluster=False))
    assert sum(n.startswith("classifier:") for n in flat.nodes) == 11


def test_a_collapsed_flow_is_one_node_with_its_inputs_and_final_outputs(file_store):
    marks = flow_store(file_store)
    graph = file_store.lineage(marks["metrics"].spec, direction="both")
    lay = layout(graph, DrawOptions(collapsed=(marks["flow"],)))
    node = lay.nodes[f"group:{marks['flow']}"]
    assert node.kind == "group" and node.data["extra"].startswith("3 runs inside")
    assert not lay.groups and f"run:{marks['train']}" not in lay.nodes and "clean:v0" not in lay.nodes
    edges = {(r.source, r.target) for r in lay.routes}
    assert ("reviews:v0", f"group:{marks['flow']}") in edges and (f"group:{marks['flow']}", "metrics:v0") in edges
    assert_left_to_right(lay)
    assert layout(graph, DrawOptions(collapsed=("*",))).nodes.keys() == lay.nodes.keys()


def test_a_cycle_is_drawn_with_one_edge_going_back(file_store):
    with plait.run("a", store=file_store) as a:
        x = a.log(b"x", name="x")
    with plait.run("b", store=file_store) as b:
        b.use(x)
        y = b.log(b"y", name="y")
    # a hand-edited store can hold a cycle: a's run also used what b made from its output
    from plait.formats import records as R

    file_store.write_event(R.VERSION_USED, {"name": "y", "number": 0, "run": a.id}, run=a.id)
    lay = layout(file_store.lineage(y.spec, direction="both"))
    back = [r for r in lay.routes if r.reversed]
    assert len(back) == 1 and back[0].points[0][0] > back[0].points[-1][0]
    forward = [r for r in lay.routes if not r.reversed]
    assert all(lay.nodes[r.source].x < lay.nodes[r.target].x for r in forward)


def test_five_hundred_nodes_lay_out_without_crossings_going_back(file_store):
    with plait.run("seed", store=file_store) as seed:
        previous = [seed.log(f"seed {i}".encode(), name=f"s{i}") for i in range(5)]
    for stage in range(50):
        with plait.run(f"stage-{stage}", store=file_store) as run:
            for v in previous:
                run.use(v)
            previous = [run.log(f"{stage}.{i}".encode(), name=f"m{i}") for i in range(4)]
    graph = file_store.lineage(previous[0].spec, direction="upstream")
    lay = layout(graph)
    assert len(lay.nodes) >= 250
    assert_left_to_right(lay)
    svg = to_svg(lay, max_width=900)
    assert svg.count('class="node ') == len(lay.nodes) and 'width="900"' in svg


def test_labels_are_escaped(file_store):
    # names are checked, a run's kind is free text: it must reach the SVG as text
    with plait.run("evil", store=file_store, kind="<script>alert(1)</script>") as run:
        v = run.log(b"x", name="evil")
    svg = to_svg(layout(file_store.lineage(v.spec, direction="both")))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_a_flows_own_graph_is_its_whole_subtree_in_its_box(file_store):
    marks = flow_store(file_store)
    graph = file_store.lineage(f"run:{marks['flow']}", direction="both")
    assert {"reviews:v0", "clean:v0", "metrics:v0"} <= set(graph.versions)
    assert {marks["train"], marks["evaluate"]} <= set(graph.runs)
    lay = layout(graph)
    (box,) = lay.groups
    assert box.root and f"run:{marks['flow']}" not in lay.nodes  # the flow is its box, drawn as the root
    outside = lay.nodes["reviews:v0"]
    assert outside.x + outside.w < box.x
    assert 'class="group root"' in to_svg(lay)


def test_a_rerun_is_the_producer_drawn_and_every_producer_on_request(file_store):
    with pytest.raises(RuntimeError), plait.run("train", store=file_store) as failed:
        failed.log(b"weights", name="model", type="model")
        raise RuntimeError("out of memory")
    with plait.run("train", store=file_store) as rerun:
        rerun.log(b"weights", name="model", type="model")
    lay = layout(file_store.lineage("model:v0", direction="both"))
    assert {r.source for r in lay.routes} == {f"run:{rerun.id}"} and lay.hidden["failed"] == 0  # not followed at all
    every = file_store.lineage("model:v0", direction="both", producers="all")
    assert layout(every).hidden["failed"] == 1  # followed, and hidden until asked for
    shown = layout(every, DrawOptions(show_failed=True))
    kinds = {(r.source, r.kind) for r in shown.routes}
    assert kinds == {(f"run:{rerun.id}", "produced"), (f"run:{failed.id}", "produced-also")}
    svg = to_svg(shown)
    assert re.search(r'class="edge produced-also"[^>]*stroke-dasharray="2 3"[^>]*data-source="run:%s"' % failed.id, svg)
    assert_left_to_right(shown)


def test_an_implicit_runs_next_segment_is_drawn_after_the_one_it_goes_on_from(file_store, monkeypatch):
    from plait.tracking.run import end_implicit_runs

    monkeypatch.setenv("PLAIT_STORE", file_store.url)
    plait.log(b"a", name="a")
    first = plait.active_run()
    with plait.run("derive") as derive:
        derive.use("a:v0")
        derive.log(b"b", name="b")
    plait.use("b:v0")
    second = plait.active_run()
    plait.log(b"c", name="c")
    end_implicit_runs()
    lay = layout(file_store.lineage("c:v0", direction="upstream"))
    links = [r for r in lay.routes if r.kind == "previous"]
    assert [(r.source, r.target) for r in links] == [(f"run:{first.id}", f"run:{second.id}")]
    assert 'stroke-dasharray="5 4"' in to_svg(lay)
    column = {n: b.layer for n, b in lay.nodes.items()}
    assert column[f"run:{first.id}"] < column["a:v0"] < column[f"run:{derive.id}"] < column["b:v0"] < column[f"run:{second.id}"]
    assert_left_to_right(lay)


def test_a_flows_inputs_are_what_no_run_inside_had_produced_when_it_was_used(file_store):
    with plait.run("download", store=file_store) as dl:
        raw = dl.log(b"raw", name="raw")
    with plait.run("flow", store=file_store, kind="prefect.flow") as flow:
        flow.use(raw)  # the flow itself reads too: its own uses and its tasks' are one graph
        with plait.run("pass", store=file_store, kind="prefect.task") as hand_on:
            hand_on.use(raw)
            hand_on.log(b"raw", name="raw")  # the same content again: it handed raw on, it did not make it
        with plait.run("clean", store=file_store, kind="prefect.task") as clean:
            clean.use(raw)
            clean.log(b"clean", name="clean")
    from plait.index import subtree

    catalog = file_store.catalog
    assert [(v.key, run) for v, run in subtree.inputs(catalog, flow.id)] == [(("raw", 0), flow.id)]
    assert [(v.key, run) for v, run in subtree.outputs(catalog, flow.id)] == [(("raw", 0), hand_on.id), (("clean", 0), clean.id)]
    graph = file_store.lineage(f"run:{flow.id}", direction="both")
    assert {"raw:v0", "clean:v0"} <= set(graph.versions) and dl.id in graph.runs
    assert_left_to_right(layout(graph))
