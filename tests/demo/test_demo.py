"""`plait demo` end to end: three real Prefect flows, Hugging Face datasets, Lightning on CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import plait
from plait.cli.app import human_size

pytest.importorskip("prefect")
pytest.importorskip("pytorch_lightning")
pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`plait demo` run once into a fresh store: its URL, what it printed, its environment and folder."""
    tmp_path = tmp_path_factory.mktemp("demo")
    store_url = str(tmp_path / "store")
    env = {**os.environ, "PLAIT_CACHE_DIR": str(tmp_path / "cache"), "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run(
        [sys.executable, "-m", "plait", "--store", store_url, "demo", "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return store_url, done.stdout, env, tmp_path


@pytest.mark.slow
def test_the_dashboard_draws_the_fine_tuned_models_lineage_left_to_right(demo_run, serve_app, page, screenshots):
    pytest.importorskip("fastapi")
    from plait.ui import create_app

    store = plait.Store(demo_run[0])
    fine_tuned = next(v for v in store.lineage("metrics-surgery:latest").versions.values() if v.name == "classifier"
                      and v.produced_by and v.produced_by.name != "train")
    graph = store.lineage(fine_tuned.spec, direction="upstream")
    with serve_app(create_app(store)) as url:
        page.goto(f"{url}/lineage?spec={fine_tuned.spec}&direction=upstream")
        page.locator("#graph svg g.node").first.wait_for()
        x = dict(page.locator("#graph g.node").evaluate_all("ns => ns.map(n => [n.dataset.id, +n.dataset.x])"))
        width = dict(page.locator("#graph g.node").evaluate_all("ns => ns.map(n => [n.dataset.id, +n.querySelector('rect').getAttribute('width')])"))
        edges = page.locator("#graph path.edge").evaluate_all("es => es.map(e => [e.dataset.source, e.dataset.target])")
        page.screenshot(path=str(screenshots / "demo-lineage.png"))
        assert page.errors == []
    # both raw review versions and the first model feed it; every edge goes right, none crosses back
    assert {"reviews:v0", "reviews:v1"} <= set(x) and fine_tuned.spec in x
    assert edges and all(x[s] + width[s] <= x[t] for s, t in edges), [(s, t) for s, t in edges if x[s] + width[s] > x[t]]
    assert x[fine_tuned.spec] == max(x[v] for v in graph.versions if v in x)  # the model it was asked about is on the right
    flows = page.locator("#graph g.group")
    assert flows.count() >= 1  # the Prefect flows are boxes around their tasks


@pytest.mark.slow
def test_the_demo_builds_a_branching_lineage_and_prints_it(demo_run):
    store_url, out, env, tmp_path = demo_run
    store = plait.Store(store_url)

    # the raw reviews: two versions of one artifact that share their unchanged shards
    raw = store.versions("reviews")
    assert [v.number for v in raw] == [0, 1]
    shared = {e.digest for e in raw[0].files()} & {e.digest for e in raw[1].files()}
    assert len(shared) == raw[0].file_count == raw[1].file_count - 1

    first = store.lineage("metrics-first:latest")
    first_model = next(v for v in first.versions.values() if v.name == "classifier")
    surgery = store.lineage("metrics-surgery:latest")
    backtrack = store.lineage("classifier:latest")

    # the fine-tuned model comes from both dataset versions and from the first model
    surgery_specs = set(surgery.versions)
    assert {"reviews:v0", "reviews:v1", first_model.spec} <= surgery_specs
    # the backtracked branch starts again from the first model and never saw the surgery
    backtrack_specs = set(backtrack.versions)
    assert first_model.spec in backtrack_specs and "reviews:v0" in backtrack_specs
    assert "reviews:v1" not in backtrack_specs
    assert not any(r.name == "model-surgery" for r in backtrack.runs.values())
    assert any(r.name == "model-surgery" for r in surgery.runs.values())

    # and it printed that lineage, the dedup, and what to try next
    assert "plait lineage classifier:latest" in out
    assert first_model.spec in out and "reviews:v0" in out and "reviews:v1" not in out.split("plait lineage classifier:latest")[1].split("store:")[0]
    counts = store.stats()
    assert 0 < counts.stored < counts.logged  # the second dataset version shares most of its bytes with the first
    assert f"bytes logged {human_size(counts.logged)}, bytes stored {human_size(counts.stored)} " in out
    assert f"store: {store_url}" in out and "plait lineage" in out and "--format mermaid" in out
    assert store.verify().ok

    # running it again (the store given the other way) only adds versions where content changed
    again = subprocess.run(
        [sys.executable, "-m", "plait", "demo", "--store", store_url, "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert [v.number for v in plait.Store(store_url).versions("reviews")] == [0, 1]
