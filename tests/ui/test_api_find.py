"""The dashboard's JSON shows tags and searches like ``plait find``."""

from __future__ import annotations

import pytest

import plait

pytest.importorskip("fastapi")


@pytest.fixture
def tagged(file_store: plait.Store):
    from fastapi.testclient import TestClient

    from plait.ui import create_app

    for i, acc in enumerate([0.5, 0.95, 0.92]):
        file_store.log(f"m{i}".encode(), name="model", type="model", metadata={"metrics": {"accuracy": acc}})
    file_store.get("model:v1").add_tags("eu", "reviewed")
    file_store.get("model:v2").add_tags("eu")
    with TestClient(create_app(file_store)) as client:
        yield client


def test_versions_list_their_tags_and_find_filters_by_them(tagged) -> None:
    items = {v["version"]: v["tags"] for v in tagged.get("/api/artifacts/model/versions").json()["items"]}
    assert items == {"v2": ["eu"], "v1": ["eu", "reviewed"], "v0": []}
    page = tagged.get("/api/find", params={"tag": "eu", "where": "metrics.accuracy>0.9",
                                           "sort": "-metrics.accuracy"}).json()
    assert (page["total"], [v["spec"] for v in page["versions"]]) == (2, ["model:v1", "model:v2"])
    assert page["versions"][0]["tags"] == ["eu", "reviewed"]
    assert tagged.get("/api/versions/model/1").json()["tags"] == ["eu", "reviewed"]


def test_a_malformed_search_is_a_clear_400(tagged) -> None:
    answer = tagged.get("/api/find", params={"where": "metrics.accuracy>"})
    assert answer.status_code == 400 and "has no value after '>'" in answer.json()["error"]


def test_listings_filter_by_tag_and_list_the_tags(tagged, file_store: plait.Store) -> None:
    file_store.log(b"d", name="data", type="dataset").add_tags("reviewed")
    file_store.log(b"other", name="other", type="dataset")
    page = tagged.get("/api/artifacts/model/versions", params={"tag": "eu"}).json()
    assert (page["total"], [v["version"] for v in page["items"]]) == (2, ["v2", "v1"])
    assert tagged.get("/api/artifacts/model/versions", params={"tag": "none-such"}).json()["total"] == 0
    assert [a["name"] for a in tagged.get("/api/artifacts", params={"tag": "reviewed"}).json()["items"]] == ["data", "model"]
    assert [a["name"] for a in tagged.get("/api/artifacts", params={"tag": "eu"}).json()["items"]] == ["model"]
    assert tagged.get("/api/tags").json() == [{"tag": "eu", "versions": 2}, {"tag": "reviewed", "versions": 2}]
    assert tagged.get("/api/tags", params={"name": "data"}).json() == [{"tag": "reviewed", "versions": 1}]
    assert tagged.get("/api/store").json()["tags"] == tagged.get("/api/tags").json()
    file_store.delete("model:v2")
    assert tagged.get("/api/tags").json() == [{"tag": "eu", "versions": 1}, {"tag": "reviewed", "versions": 2}]
    assert [v["version"] for v in tagged.get("/api/artifacts/model/versions", params={"tag": "eu"}).json()["items"]] == ["v1"]


def test_a_malformed_tag_filter_is_a_clear_400(tagged) -> None:
    for url in ("/api/artifacts", "/api/artifacts/model/versions"):
        answer = tagged.get(url, params={"tag": "no spaces"})
        assert answer.status_code == 400 and "tag" in answer.json()["error"], url
