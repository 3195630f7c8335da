"""The JSON behind the pages a team reads: drawings, folders, galleries, comparisons, a flow's
subtree, usage snippets; and their bad inputs, each a clear error."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from plait.ui import create_app


@pytest.fixture
def api(team_demo):
    store, marks = team_demo
    with TestClient(create_app(store)) as c:
        yield c, marks


def test_a_drawing_hides_collapses_and_says_what_it_hid(api):
    c, marks = api
    d = c.get(f"/api/lineage/drawing?spec=run:{marks['flow']}").json()
    assert d["hidden"] == {"deleted": 0, "failed": 1} and d["groups"] == [marks["flow"]] and d["crossings"] == 0
    assert d["svg"].startswith("<svg") and f'data-id="run:{marks["failed"]}"' not in d["svg"]
    shown = c.get(f"/api/lineage/drawing?spec=run:{marks['flow']}&show_failed=true&collapsed=*").json()
    assert shown["collapsed"] == [marks["flow"]] and shown["groups"] == []
    assert c.get("/api/lineage/drawing?spec=raw:v1&direction=sideways").status_code == 400


def test_folders_and_the_gallery(api):
    c, _ = api
    top = c.get("/api/versions/team-data/0/tree").json()
    assert [(i["name"], i["type"]) for i in top["items"]] == [("images", "folder"), ("features.parquet", "file")]
    assert top["items"][1]["kind"] == "table" and top["images"] == 6
    cats = c.get("/api/versions/team-data/0/tree?path=images/cats").json()
    assert cats["total"] == 6 and all(i["kind"] == "image" for i in cats["items"])
    g = c.get("/api/versions/team-data/0/gallery?path=images&limit=4").json()
    assert g["total"] == 6 and len(g["items"]) == 4 and c.get(g["items"][0]["url"]).headers["content-type"] == "image/png"
    r = c.get("/api/versions/team-data/0/tree?path=nope")
    assert r.status_code == 404 and "has no folder 'nope'" in r.json()["error"]


def test_a_flow_run_answers_for_its_whole_subtree(api):
    c, marks = api
    r = c.get(f"/api/runs/{marks['flow']}").json()
    assert r["inputs"] == [] and r["subtree"]["runs"] == 5
    assert [v["spec"] for v in r["subtree"]["inputs"]] == ["raw:v1"]
    assert {v["spec"]: v["intermediate"] for v in r["subtree"]["outputs"]}["team-data:v0"] is True
    fit = c.get(f"/api/runs/{marks['train']}").json()
    assert fit["metrics"] == {"val_loss": 0.0833, "val_acc": 0.91} and fit["inherited"] == []


def test_comparisons_and_their_limits(api):
    c, _ = api
    r = c.get("/api/compare?specs=classifier:v0&specs=classifier:best").json()
    meta = next(s for s in r["sections"] if s["title"] == "Metadata")
    assert {row["key"]: row["values"] for row in meta["rows"]} == {"epoch": [0, 11], "val_loss": [1.0, 0.0833]}
    assert all(row["differs"] for row in meta["rows"])
    too_many = "&".join(f"specs=classifier:v{i}" for i in range(9))
    assert c.get(f"/api/compare?{too_many}").status_code in (400, 422)
    assert c.get("/api/compare?specs=nothing:v0").status_code == 404


def test_usage_snippets_name_the_version(api):
    c, marks = api
    usage = {u["label"]: u["code"] for u in c.get("/api/versions/classifier/11").json()["usage"]}
    assert 'plait.get("classifier:v11")  # or classifier:best' in usage["Python"]
    assert usage["Command line"] == "plait get classifier:v11 classifier/"
    if "hf" in marks:
        assert "Hugging Face" in {u["label"] for u in c.get("/api/versions/reviews-hf/0").json()["usage"]}
