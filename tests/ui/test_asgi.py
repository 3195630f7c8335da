"""`plait.ui.asgi`: the team dashboard for uvicorn/gunicorn workers, set up from the environment."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("argon2", reason="logins need the ui extra")

from plait.errors import InvalidInputError  # noqa: E402
from plait.ui.users import UsersFile  # noqa: E402


def test_the_asgi_app_reads_its_setup_from_the_environment(file_store, tmp_path, monkeypatch):
    import plait.ui.asgi as asgi

    users = tmp_path / "users.json"
    monkeypatch.setenv("PLAIT_STORE", file_store.url)
    monkeypatch.setenv("PLAIT_USERS", str(users))
    monkeypatch.setenv("PLAIT_UI_ALLOWED_HOSTS", "plait.example.com, testserver")
    with pytest.raises(InvalidInputError, match="has no user yet"):
        asgi.create()
    UsersFile(users).add("ada", "admin", "admin-pass-1")
    file_store.log(b"x", name="thing")
    c = TestClient(asgi.create())
    assert c.get("/api/session").json()["auth"] == "users"
    assert c.get("/api/artifacts").status_code == 401
    c.post("/api/login", json={"name": "ada", "password": "admin-pass-1"})
    assert [a["name"] for a in c.get("/api/artifacts").json()["items"]] == ["thing"]
    r = c.get("/api/artifacts", headers={"Host": "elsewhere.example"})
    assert r.status_code == 400 and "answers only to 127.0.0.1, ::1, localhost, plait.example.com, testserver" in r.json()["error"]
    assert "PLAIT_UI_ALLOWED_HOSTS" in r.json()["error"]
    monkeypatch.setenv("PLAIT_UI_SESSION_HOURS", "soon")
    with pytest.raises(InvalidInputError, match="PLAIT_UI_SESSION_HOURS a number"):
        asgi.create()
