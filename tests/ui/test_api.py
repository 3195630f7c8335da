"""The dashboard's JSON API, through FastAPI's test client over a real store."""

from __future__ import annotations

import json

import pytest

import plait

#: The fine-tuning stages of the demo store (see conftest.build_demo).
STAGES = 20


def test_store_summary(client, shared_demo):
    store, _ = shared_demo
    body = client.get("/api/store").json()
    assert body["url"] == store.url and body["id"] == store.id and body["allow_edit"] is False
    assert body["counts"] == {"artifacts": 8, "versions": 8 + STAGES + 1, "runs": 3 + STAGES + 1}
    assert body["types"] == [{"type": "dataset", "artifacts": 3}, {"type": "model", "artifacts": 2}, {"type": "result", "artifacts": 3}]


def test_artifact_list_counts_latest_size_and_update(client, shared_demo):
    _, marks = shared_demo
    page = client.get("/api/artifacts").json()
    assert page["total"] == 8 and [a["name"] for a in page["items"]][:3] == ["clean", "eval-05", "eval-10"]
    raw = next(a for a in page["items"] if a["name"] == "raw")
    assert raw == {"name": "raw", "type": "dataset", "versions": 2, "latest": "v1", "latest_number": 1,
                   "size": marks["raw1"].size, "file_count": 5, "updated_at": marks["raw1"].created_at, "aliases": ["prod"]}


def test_artifact_list_filters_searches_and_pages(client):
    assert [a["name"] for a in client.get("/api/artifacts?type=model").json()["items"]] == ["ft", "model"]
    assert [a["name"] for a in client.get("/api/artifacts?q=EVAL-1").json()["items"]] == ["eval-10", "eval-15"]
    assert client.get("/api/artifacts?q=%25").json()["total"] == 0  # LIKE wildcards are literal
    page = client.get("/api/artifacts?limit=3&offset=3").json()
    assert (page["total"], page["offset"], [a["name"] for a in page["items"]]) == (8, 3, ["eval-15", "ft", "instructions"])


@pytest.mark.parametrize("query, message", [("limit=0", "limit must be between 1 and 500"),
                                            ("limit=501", "limit must be between 1 and 500"),
                                            ("offset=-1", "offset must be 0 or more")])
def test_bad_pages_are_refused(client, query, message):
    r = client.get(f"/api/artifacts?{query}")
    assert r.status_code == 400 and message in r.json()["error"]


def test_versions_of_an_artifact_newest_first(client, shared_demo):
    _, marks = shared_demo
    page = client.get("/api/artifacts/ft/versions?limit=5").json()
    assert page["total"] == STAGES and [v["version"] for v in page["items"]] == ["v19", "v18", "v17", "v16", "v15"]
    top = page["items"][0]
    assert top["aliases"] == ["latest", "release"] and top["file_count"] == 1 and top["size"] == len(b"ft-weights-19")
    assert top["run"] == {"id": marks["stages"][-1], "name": "finetune-19", "kind": "manual"}


def test_unknown_and_malformed_names(client):
    r = client.get("/api/artifacts/nope/versions")
    assert r.status_code == 404 and "no artifact named 'nope'" in r.json()["error"] and "raw" in r.json()["error"]
    assert client.get("/api/artifacts/..%2Fetc/versions").status_code in (400, 404)
    r = client.get("/api/versions/raw/7")
    assert r.status_code == 404 and "'raw' has no version v7 (it has v0, v1, aliases: prod)" in r.json()["error"]
    assert client.get("/api/versions/raw/x").status_code == 422
    r = client.get("/api/versions/bad name/0")
    assert r.status_code == 400


def test_version_detail(client, shared_demo):
    store, marks = shared_demo
    v = client.get("/api/versions/raw/1").json()
    assert v["spec"] == "raw:v1" and v["aliases"] == ["latest", "prod"] and v["metadata"] == {"rows": 4, "license": "cc-by"}
    assert v["digest"] == marks["raw1"].digest and v["run"]["name"] == "ingest"
    assert [r["name"] for r in v["used_by"]] == ["prepare"]
    assert client.get("/api/versions/raw/0").json()["description_html"] == "<p>First crawl.</p>\n"


def test_file_list(client, shared_demo):
    _, marks = shared_demo
    RAW_FILES, png_bytes = marks["raw_files"], lambda: marks["png"]
    files = client.get("/api/versions/raw/0/files").json()
    assert files["total"] == 5
    assert [(f["path"], f["size"], f["kind"]) for f in files["items"]] == [
        ("README.md", len(RAW_FILES["README.md"]), "text"), ("config.json", len(RAW_FILES["config.json"]), "json"),
        ("data.csv", len(RAW_FILES["data.csv"]), "csv"), ("images/pixel.png", len(png_bytes()), "image"),
        ("weights.bin", 1024, "binary")]
    assert {f["path"]: f["digest"] for f in files["items"]} == {e.path: e.digest for e in marks["raw0"].files()}


def test_previews_read_the_stored_bytes(client, shared_demo):
    RAW_FILES, png = shared_demo[1]["raw_files"], shared_demo[1]["png"]
    csv_ = client.get("/api/versions/raw/1/preview", params={"path": "data.csv"}).json()
    assert csv_["rows"] == [["id", "text", "label"], ["1", "hello", "0"], ["2", "world", "1"], ["3", "a, quoted", "0"], ["4", "again", "1"]]
    js = client.get("/api/versions/raw/1/preview", params={"path": "config.json"}).json()
    assert json.loads(js["text"]) == {"source": "crawl", "languages": ["en", "fr"]} and js["text"].startswith("{\n  ")
    text = client.get("/api/versions/raw/1/preview", params={"path": "README.md"}).json()
    assert text == {"path": "README.md", "size": 30, "kind": "text", "truncated": False, "text": RAW_FILES["README.md"]}
    image = client.get("/api/versions/raw/1/preview", params={"path": "images/pixel.png"}).json()
    raw = client.get(image["url"])
    assert raw.status_code == 200 and raw.content == png and raw.headers["content-type"] == "image/png"
    assert "text" not in client.get("/api/versions/raw/0/preview", params={"path": "weights.bin"}).json()


def test_long_text_previews_only_the_head(edit_client, demo):
    client, store = edit_client, demo[0]
    big = "".join(f"line {i}\n" for i in range(30_000))
    store.log(big.encode(), name="big-log", type="result")
    p = client.get("/api/versions/big-log/0/preview", params={"path": "big-log"}).json()
    assert p["truncated"] and p["text"].startswith("line 0\nline 1\n") and len(p["text"]) <= 64 << 10
    assert p["text"].endswith(f"line {p['text'].count(chr(10))}")  # ends on a whole line


@pytest.mark.parametrize("path, status, message", [
    ("../../../etc/passwd", 400, "'../../../etc/passwd'"),
    ("/etc/passwd", 400, "'/etc/passwd'"),
    ("data.csv/../../x", 400, "'data.csv/../../x'"),
    ("missing.txt", 404, "raw:v1 has no file 'missing.txt' (it has README.md, config.json, data.csv"),
])
def test_previews_never_leave_the_version(client, path, status, message):
    for endpoint in ("preview", "raw"):
        r = client.get(f"/api/versions/raw/1/{endpoint}", params={"path": path})
        assert r.status_code == status and message in r.json()["error"]


def test_only_real_images_are_served_raw(edit_client, demo):
    client, store = edit_client, demo[0]
    r = client.get("/api/versions/raw/1/raw", params={"path": "data.csv"})
    assert r.status_code == 400 and "only images are served raw" in r.json()["error"]
    store.log(b"<html><script>alert(1)</script>", name="fake.png", type="result")
    r = client.get("/api/versions/fake.png/0/raw", params={"path": "fake.png"})
    assert r.status_code == 400 and "does not hold image/png data" in r.json()["error"]


def test_history_and_diff(client):
    hist = client.get("/api/versions/raw/1/history").json()
    assert [h["kind"] for h in hist] == ["version.logged", "alias.set", "version.used"] and hist[1]["detail"]["alias"] == "prod"
    d = client.get("/api/versions/raw/1/diff", params={"against": "v0"}).json()
    assert (d["old"], d["new"], d["unchanged"]) == ("raw:v0", "raw:v1", 3)
    assert d["added"] == [{"path": "extra.txt", "size": 9}] and d["removed"] == [{"path": "weights.bin", "size": 1024}]
    assert d["modified"] == [{"path": "data.csv", "old_size": 50, "new_size": 60}]
    other = client.get("/api/versions/clean/0/diff", params={"against": "raw:prod"}).json()
    assert other["old"] == "raw:v1" and other["added_count"] == 1
    r = client.get("/api/versions/raw/1/diff", params={"against": "raw:nope"})
    assert r.status_code == 404 and "alias 'nope'" in r.json()["error"]


def test_notes_are_refused_without_allow_edit(client, shared_demo):
    store, _ = shared_demo
    r = client.put("/api/versions/raw/1/description", json={"description": "hi"})
    assert r.status_code == 403 and "plait ui --allow-edit" in r.json()["error"]
    assert store.get("raw:v1").description == ""


def test_notes_edit_is_an_event_with_its_author(edit_client, demo, monkeypatch):
    store, _ = demo
    monkeypatch.setenv("PLAIT_USER", "ada")
    r = edit_client.put("/api/versions/raw/1/description", json={"description": "# Cleaned\n\nSee *prepare*."})
    assert r.status_code == 200
    assert r.json()["description_html"] == "<h1>Cleaned</h1>\n<p>See <em>prepare</em>.</p>\n"
    assert store.get("raw:v1").description == "# Cleaned\n\nSee *prepare*."
    last = store.get("raw:v1").history()[-1]
    assert (last.kind, last.user, last.detail["new"]) == ("version.updated", "ada", {"description": "# Cleaned\n\nSee *prepare*."})
    assert edit_client.get("/api/versions/raw/1/history").json()[-1]["user"] == "ada"


@pytest.mark.parametrize("body, status, message", [
    ({"description": 3}, 422, "description"),
    ({}, 422, "description"),
    ({"description": "x" * 100_001}, 400, "at most 100000 characters"),
    ({"description": "a\x00b"}, 400, "NUL"),
])
def test_bad_notes_are_refused(edit_client, demo, body, status, message):
    r = edit_client.put("/api/versions/raw/1/description", json=body)
    assert r.status_code == status and message in r.json()["error"]
    assert demo[0].get("raw:v1").description == ""


def test_a_note_that_is_not_utf8_is_refused_and_writes_no_event(edit_client, demo):
    events = len(demo[0].backend.find("events"))
    r = edit_client.put("/api/versions/raw/1/description", content=b'{"description": "bad \\udc80 text"}',
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "is not valid UTF-8" in r.json()["error"]
    assert len(demo[0].backend.find("events")) == events and demo[0].verify().ok


def test_notes_are_sanitised(edit_client):
    attack = '<img src=x onerror=alert(1)><script>alert(2)</script> [x](javascript:alert(3)) <a href="https://ok.example">ok</a>'
    html = edit_client.put("/api/versions/clean/0/description", json={"description": attack}).json()["description_html"]
    assert "<img" not in html and "<script" not in html and "<a" not in html and 'href="javascript' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;" in html
    link = edit_client.put("/api/versions/clean/0/description", json={"description": "[docs](https://ok.example/a)"}).json()
    assert link["description_html"] == '<p><a href="https://ok.example/a" rel="noopener noreferrer">docs</a></p>\n'


def test_cross_site_writes_are_refused(edit_client, demo):
    r = edit_client.put("/api/versions/raw/1/description", json={"description": "x"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "https://evil.example may not change this store" in r.json()["error"]
    r = edit_client.put("/api/versions/raw/1/description", content=b"description=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "Content-Type: application/json" in r.json()["error"]
    assert demo[0].get("raw:v1").description == ""


def test_foreign_hosts_are_refused_when_bound_to_loopback(shared_demo):
    from fastapi.testclient import TestClient

    from plait.ui.app import LOOPBACK_HOSTS, create_app

    app = create_app(shared_demo[0], trusted_hosts=LOOPBACK_HOSTS)
    assert TestClient(app, base_url="http://127.0.0.1:8765").get("/api/store").status_code == 200
    assert TestClient(app, base_url="http://localhost:8765").get("/api/store").status_code == 200
    r = TestClient(app, base_url="http://attacker.example:8765").get("/api/store")
    assert r.status_code == 400 and "answers only to 127.0.0.1" in r.json()["error"]


def test_runs_list_and_detail(client, shared_demo):
    _, marks = shared_demo
    page = client.get("/api/runs?limit=2").json()
    assert page["total"] == 3 + STAGES + 1 and [r["name"] for r in page["items"]] == ["finetune-19", "finetune-18"]
    assert client.get("/api/runs?name=prepare").json()["items"][0] | {"id": None, "started_at": None, "ended_at": None} == {
        "id": None, "name": "prepare", "kind": "manual", "parent": None, "status": "finished", "started_at": None,
        "ended_at": None, "inputs": 1, "outputs": 1}
    run = client.get(f"/api/runs/{marks['train']}").json()
    assert run["config"] == {"lr": 0.001, "epochs": 3} and run["status"] == "finished"
    assert [v["spec"] for v in run["inputs"]] == ["clean:v0"] and run["outputs"][0]["aliases"] == ["latest", "best"]
    assert client.get(f"/api/runs/{marks['train'][:20]}").json()["id"] == marks["train"]  # a prefix is enough
    assert client.get("/api/runs/ZZZZ").status_code == 404
    assert client.get("/api/runs/a'b").status_code == 400


def test_lineage_of_the_twenty_stage_chain(client, shared_demo):
    _, marks = shared_demo
    g = client.get("/api/lineage", params={"spec": "ft:release", "direction": "upstream"}).json()
    ids = {n["id"] for n in g["nodes"]}
    assert g["root"] == "ft:v19" and {f"ft:v{i}" for i in range(STAGES)} <= ids and {"raw:v1", "clean:v0", "model:v0"} <= ids
    kinds = {n["id"]: n["node"] for n in g["nodes"]}
    assert all(kinds[f"run:{s}"] == "run" for s in marks["stages"]) and kinds["ft:v3"] == "version"
    edges = {(e["source"], e["target"], e["kind"]) for e in g["edges"]}
    assert ("ft:v9", f"run:{marks['stages'][10]}", "used") in edges
    assert (f"run:{marks['stages'][10]}", "ft:v10", "produced") in edges
    assert ("instructions:v1", f"run:{marks['stages'][10]}", "used") in edges
    run_graph = client.get("/api/lineage", params={"spec": f"run:{marks['prepare']}", "depth": 1}).json()
    assert {n["id"] for n in run_graph["nodes"]} >= {"raw:v1", "clean:v0", f"run:{marks['prepare']}"}
    r = client.get("/api/lineage", params={"spec": "ft:v1", "direction": "sideways"})
    assert r.status_code == 400 and "direction must be one of" in r.json()["error"]


def test_pages_and_openapi(client):
    for path in ("/", "/a/raw", "/v/raw/1", "/runs", "/r/X", "/lineage", "/api-docs"):
        r = client.get(path)
        assert r.status_code == 200 and '<script src="/static/app.js">' in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-content-type-options"] == "nosniff"
    for asset in ("app.js", "graph.js", "style.css"):
        body = client.get(f"/static/{asset}").text
        assert "http://" not in body.replace("http://www.w3.org/2000/svg", "") and "https://" not in body  # no CDN
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/artifacts", "/api/artifacts/{name}/versions", "/api/versions/{name}/{number}", "/api/lineage",
            "/api/versions/{name}/{number}/description", "/api/runs/{run_id}"} <= set(paths)
    assert paths["/api/versions/{name}/{number}/description"]["put"]["summary"] == "Edit a version's notes"


def test_a_version_made_by_a_failed_run_and_its_rerun(file_store):
    """The dashboard credits the rerun, lists both producers, and draws either graph; a loop is served as is."""
    from fastapi.testclient import TestClient

    from plait.ui import create_app

    with pytest.raises(RuntimeError), plait.run("train", store=file_store) as failed:
        failed.log(b"weights", name="model")
        raise RuntimeError("out of memory")
    with plait.run("train", store=file_store) as rerun:
        rerun.log(b"weights", name="model")
        rerun.use("model:v0")  # reading back its own output: not an input
    with plait.run("loop", store=file_store) as loop:
        loop.log(b"x", name="x")
        with plait.run("derive", store=file_store, parent=None) as derive:
            derive.use("x:v0")
            derive.log(b"y", name="y")
        loop.use("y:v0")
    with TestClient(create_app(file_store)) as client:
        v = client.get("/api/versions/model/0").json()
        assert v["run"]["id"] == rerun.id and [(r["id"], r["status"]) for r in v["producers"]] == [
            (failed.id, "failed"), (rerun.id, "finished")]
        assert client.get("/api/artifacts/model/versions").json()["items"][0]["run"]["id"] == rerun.id
        runs = {n["run_id"] for n in client.get("/api/lineage", params={"spec": "model:v0"}).json()["nodes"] if n["node"] == "run"}
        assert runs == {rerun.id}
        g = client.get("/api/lineage", params={"spec": "model:v0", "producers": "all"}).json()
        assert {n["run_id"]: n["status"] for n in g["nodes"] if n["node"] == "run"} == {failed.id: "failed", rerun.id: "finished"}
        g = client.get("/api/lineage", params={"spec": "y:v0", "direction": "both"}).json()
        edges = {(e["source"], e["target"], e["kind"]) for e in g["edges"]}
        assert {("y:v0", f"run:{loop.id}", "used"), (f"run:{loop.id}", "x:v0", "produced"), ("x:v0", f"run:{derive.id}", "used")} <= edges
        r = client.get("/api/lineage", params={"spec": "model:v0", "producers": "best"})
        assert r.status_code == 400 and "producers must be one of preferred, all" in r.json()["error"]
