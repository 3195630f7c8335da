"""`plait demo` end to end: three real Prefect flows, Hugging Face datasets, Lightning on CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import plait

pytest.importorskip("prefect")
pytest.importorskip("pytorch_lightning")
pytest.importorskip("datasets")


@pytest.mark.slow
def test_the_demo_builds_a_branching_lineage_and_prints_it(tmp_path):
    store_url = str(tmp_path / "store")
    env = {**os.environ, "PLAIT_CACHE_DIR": str(tmp_path / "cache"), "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run(
        [sys.executable, "-m", "plait", "--store", store_url, "demo", "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout
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
    assert "bytes logged" in out and "bytes stored" in out
    assert f"store: {store_url}" in out and "plait lineage" in out and "--format mermaid" in out
    assert store.verify().ok

    # running it again (the store given the other way) only adds versions where content changed
    again = subprocess.run(
        [sys.executable, "-m", "plait", "demo", "--store", store_url, "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert [v.number for v in plait.Store(store_url).versions("reviews")] == [0, 1]
