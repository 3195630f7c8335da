"""Team mode through the JSON API: logins, sessions, tokens, roles, CSRF, and every bad request
refused with a clear error that changes nothing and is logged."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("argon2", reason="logins need the ui extra: pip install 'plait[ui]'")

from fastapi.testclient import TestClient  # noqa: E402

from plait.ui import create_app  # noqa: E402
from plait.ui.auth import AuthConfig  # noqa: E402
from plait.ui.users import UsersFile  # noqa: E402

PASSWORDS = {"vera": "viewer-pass-1", "ed": "editor-pass-1", "ada": "admin-pass-1"}


@pytest.fixture(scope="module")
def users_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("users") / "users.json"
    users = UsersFile(path)
    for (name, password), role in zip(PASSWORDS.items(), ("viewer", "editor", "admin")):
        users.add(name, role, password)
    return str(path)


@pytest.fixture
def team(demo, users_path, tmp_path):
    """A team dashboard over a fresh demo store, and a function that logs a client in."""
    import shutil

    path = tmp_path / "users.json"
    shutil.copy(users_path, path)
    store = demo[0]
    auth = AuthConfig(mode="users", users=UsersFile(path))
    app = create_app(store, auth=auth)

    def client(name: str | None = None, **kwargs) -> TestClient:
        c = TestClient(app, **kwargs)
        if name:
            r = c.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
            assert r.status_code == 200, r.text
            c.headers["X-CSRF-Token"] = r.json()["csrf"]
        return c

    return store, client, UsersFile(path)


def patch(c: TestClient, url: str, body: dict | bytes):
    """PATCH ``body``: a dict as JSON, bytes as they are (sent as JSON)."""
    if isinstance(body, bytes):
        return c.patch(url, content=body, headers={"Content-Type": "application/json"})
    return c.patch(url, json=body)


def test_nothing_but_the_login_answers_without_one(team):
    _, client, _ = team
    c = client()
    r = c.get("/api/artifacts")
    assert r.status_code == 401 and "log in first" in r.json()["error"]
    assert c.get("/api/session").json() == {"auth": "users", "user": None, "role": None, "via": None, "csrf": None,
                                            "can_edit": False, "is_admin": False}
    assert c.get("/v/raw/1").status_code == 200  # the page itself shows the login form
    assert c.get("/api/lineage/drawing?spec=raw:v1").status_code == 401


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(team):
    _, client, _ = team
    c = client(base_url="https://testserver")
    r = c.post("/api/login", json={"name": "ed", "password": PASSWORDS["ed"]})
    cookie = r.headers["set-cookie"]
    assert r.status_code == 200 and r.json()["user"] == "ed" and r.json()["role"] == "editor" and r.json()["csrf"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie and "Max-Age=43200" in cookie
    assert c.get("/api/artifacts").status_code == 200
    c.post("/api/logout", json={}, headers={"X-CSRF-Token": r.json()["csrf"]})
    assert c.get("/api/artifacts").status_code == 401
    assert "Secure" not in client().post("/api/login", json={"name": "ed", "password": PASSWORDS["ed"]}).headers["set-cookie"]


def test_a_wrong_password_is_refused_and_logged(team, caplog):
    _, client, _ = team
    c = client()
    with caplog.at_level(logging.WARNING, logger="plait.ui"):
        r = c.post("/api/login", json={"name": "ed", "password": "wrong-password"})
        unknown = c.post("/api/login", json={"name": "nobody", "password": "wrong-password"})
    assert r.status_code == 401 and r.json() == {"error": "wrong user name or password"} and "set-cookie" not in r.headers
    assert unknown.status_code == 401 and unknown.json() == r.json()  # the same answer: names are not revealed
    assert "login failed for 'ed' from testclient" in caplog.text
    assert c.get("/api/artifacts").status_code == 401


def test_failed_logins_are_limited(team):
    _, client, _ = team
    c = client()
    for _ in range(5):
        assert c.post("/api/login", json={"name": "ada", "password": "not-it-at-all"}).status_code == 401
    r = c.post("/api/login", json={"name": "ada", "password": PASSWORDS["ada"]})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 800 and "too many failed logins" in r.json()["error"]


def test_a_viewer_cannot_edit(team, caplog):
    store, client, _ = team
    c = client("vera")
    before = store.get("raw:v1")
    caplog.set_level(logging.WARNING, logger="plait.ui")
    for method, url, body in [("PUT", "/api/versions/raw/1/description", {"description": "mine"}),
                              ("PATCH", "/api/versions/raw/1/metadata", {"set": {"x": 1}}),
                              ("POST", "/api/artifacts/raw/aliases", {"alias": "prod", "number": 0}),
                              ("DELETE", "/api/artifacts/raw/aliases/prod", None),
                              ("PATCH", "/api/versions/raw/1/tags", {"add": ["eu"]})]:
        r = c.request(method, url, json=body)
        assert r.status_code == 403 and "vera is a viewer" in r.json()["error"], (method, url)
    after = store.get("raw:v1")
    assert (after.description, dict(after.metadata), after.aliases, after.tags) == (
        before.description, dict(before.metadata), before.aliases, ())
    assert "refused: vera (viewer) may not change tags" in caplog.text
    assert "refused: vera (viewer) may not change notes" in caplog.text
    assert "PUT /api/versions/raw/1/description by vera refused (403)" in caplog.text


def test_an_editor_edits_and_the_history_says_who(team):
    store, client, _ = team
    c = client("ed")
    assert c.put("/api/versions/raw/1/description", json={"description": "cleaned"}).status_code == 200
    r = c.patch("/api/versions/raw/1/metadata", json={"set": {"reviewed": True, "rows": 5}, "remove": ["license"]})
    assert r.status_code == 200 and r.json()["metadata"] == {"rows": 5, "reviewed": True}
    assert c.post("/api/artifacts/raw/aliases", json={"alias": "prod", "number": 0}).json()["aliases"] == [
        {"alias": "prod", "number": 0, "version": "v0", "protected": False}]
    assert c.delete("/api/artifacts/raw/aliases/prod").json()["aliases"] == []
    history = store.get("raw:v1").history()
    assert [(h.kind, h.user) for h in history[-3:]] == [("version.updated", "ed"), ("version.updated", "ed"), ("alias.set", "ed")]
    moves = c.get("/api/artifacts/raw/aliases").json()["history"]
    assert [(m["kind"], m["user"]) for m in moves[:2]] == [("removed", "ed"), ("set", "ed")]


def test_an_editor_tags_a_version_and_the_history_says_who(team):
    store, client, _ = team
    c = client("ed")
    r = c.patch("/api/versions/raw/1/tags", json={"add": ["reviewed", "eu"]})
    assert r.status_code == 200 and r.json()["tags"] == ["eu", "reviewed"]
    r = c.patch("/api/versions/raw/1/tags", json={"add": ["gold"], "remove": ["eu"]})
    assert r.status_code == 200 and r.json()["tags"] == ["gold", "reviewed"]
    assert store.get("raw:v1").tags == ("gold", "reviewed")
    history = c.get("/api/versions/raw/1/history").json()
    assert [(h["kind"], h["user"], h["detail"]) for h in history[-2:]] == [
        ("tags.changed", "ed", {"number": 1, "added": ["eu", "reviewed"], "removed": []}),
        ("tags.changed", "ed", {"number": 1, "added": ["gold"], "removed": ["eu"]})]
    assert history[-1]["text"].endswith("tags +gold -eu  by ed")
    events = len(store.backend.find("events"))
    assert c.patch("/api/versions/raw/1/tags", json={"add": ["gold"]}).json()["tags"] == ["gold", "reviewed"]
    assert len(store.backend.find("events")) == events  # a tag it already carries: nothing recorded


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"add": ["no spaces"]}, 400, "tag"),
    ({"add": ["x" * 129]}, 400, "tag"),
    ({"remove": ["absent"]}, 404, "raw:v1 has no tag 'absent' (its tags: keep)"),
    ({"add": ["a"], "remove": ["a"]}, 400, "tag 'a' is both added and removed"),
    ({}, 400, "give at least one tag to add or remove"),
    ({"add": [f"t{i}" for i in range(300)]}, 422, "add"),
    ({"add": "eu"}, 422, "add"),
    (b'{"add": ["\\ud800"]}', 400, "tag"),
])
def test_bad_tag_edits_change_nothing_and_are_logged(team, caplog, body, status, message):
    store, client, _ = team
    store.get("raw:v1").add_tags("keep")
    events = len(store.backend.find("events"))
    c = client("ed")
    caplog.set_level(logging.WARNING, logger="plait.ui")
    r = patch(c, "/api/versions/raw/1/tags", body)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert store.get("raw:v1").tags == ("keep",) and len(store.backend.find("events")) == events
    assert f"PATCH /api/versions/raw/1/tags by ed refused ({status})" in caplog.text


def test_only_an_admin_moves_a_protected_alias(team, caplog):
    store, client, _ = team
    store.set_setting("aliases.protected", ["prod"])
    events = len(store.backend.find("events"))
    caplog.set_level(logging.WARNING, logger="plait.ui")
    ed = client("ed")
    assert ed.get("/api/artifacts/raw/aliases").json()["aliases"] == [{"alias": "prod", "number": 1, "version": "v1", "protected": True}]
    for method, url, body in [("POST", "/api/artifacts/raw/aliases", {"alias": "prod", "number": 0}),
                              ("DELETE", "/api/artifacts/raw/aliases/prod", None)]:
        r = ed.request(method, url, json=body)
        assert r.status_code == 403 and "raw:prod is protected (store setting aliases.protected)" in r.json()["error"]
        assert "only an admin may" in r.json()["error"]
    assert store.get("raw:prod").number == 1 and len(store.backend.find("events")) == events
    assert "POST /api/artifacts/raw/aliases by ed refused (403): raw:prod is protected" in caplog.text
    assert ed.post("/api/artifacts/raw/aliases", json={"alias": "staging", "number": 0}).status_code == 200  # others move freely
    ada = client("ada")
    r = ada.post("/api/artifacts/raw/aliases", json={"alias": "prod", "number": 0})
    assert r.status_code == 200 and store.get("raw:prod").number == 0
    (move,) = [m for m in ada.get("/api/artifacts/raw/aliases").json()["history"] if m["alias"] == "prod" and m["user"] == "ada"]
    assert move["protected"] and move["old"] == 1
    last = store.get("raw:v0").history()[-1]
    assert (last.kind, last.user, last.detail["protected"]) == ("alias.set", "ada", True)
    assert str(last).endswith("alias 'prod' set (from v1) (protected)  by ada")


def test_writes_need_the_sessions_csrf_token(team):
    store, client, _ = team
    c = client("ed")
    token = c.headers.pop("X-CSRF-Token")
    r = c.put("/api/versions/raw/1/description", json={"description": "csrf"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = c.put("/api/versions/raw/1/description", json={"description": "csrf"}, headers={"X-CSRF-Token": token[:-1] + "x"})
    assert r.status_code == 403 and store.get("raw:v1").description == ""
    other = client("ada").headers["X-CSRF-Token"]
    assert c.put("/api/versions/raw/1/description", json={"description": "x"}, headers={"X-CSRF-Token": other}).status_code == 403
    r = c.patch("/api/versions/raw/1/tags", json={"add": ["eu"]}, headers={"X-CSRF-Token": other})
    assert r.status_code == 403 and "CSRF" in r.json()["error"] and store.get("raw:v1").tags == ()


def test_expired_forged_and_ended_sessions_are_refused(team, monkeypatch, caplog):
    store, client, users = team
    import itsdangerous.timed

    from plait.ui.auth import COOKIE

    auth = AuthConfig(mode="users", users=users)
    generation = users.user("ed").generation
    real = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() - 13 * 3600)
    old, _ = auth.session_cookie("ed", generation)
    monkeypatch.setattr(itsdangerous.timed.time, "time", real)
    c = client()
    c.cookies.set(COOKIE, old)
    with caplog.at_level(logging.WARNING, logger="plait.ui"):
        assert c.get("/api/artifacts").json() == {"error": "your session expired; log in again"}
    assert "GET /api/artifacts from testclient refused (401): your session expired" in caplog.text
    c.cookies.set(COOKIE, auth.session_cookie("ed", generation)[0][:-2] + "xx")
    assert c.get("/api/artifacts").json()["error"] == "this session is not one this dashboard signed; log in again"
    forged, _ = AuthConfig(mode="users", users=UsersFile(users.path.parent / "other.json")).session_cookie("ada", 1)
    c.cookies.set(COOKIE, forged)
    assert c.get("/api/artifacts").status_code == 401
    logged_in = client("ed")
    users.add("ed", "editor", "a-new-password")  # a new password ends every session of ed's
    r = logged_in.get("/api/artifacts")
    assert r.status_code == 401 and "password changed" in r.json()["error"]


def test_tokens_work_until_their_user_is_removed(team):
    store, client, users = team
    token = users.new_token("ed", "ci")
    c = client()
    r = c.put("/api/versions/raw/1/description", json={"description": "from ci"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200  # a bearer token needs no CSRF token: a browser never sends it by itself
    assert store.get("raw:v1").history()[-1].user == "ed"
    assert c.get("/api/artifacts", headers={"Authorization": "Bearer plait_nope_nope"}).status_code == 401
    users.remove("ed")
    r = c.get("/api/artifacts", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "unknown or revoked" in r.json()["error"]


def test_a_role_change_applies_at_the_next_request(team):
    _, client, users = team
    c = client("vera")
    assert c.put("/api/versions/raw/1/description", json={"description": "x"}).status_code == 403
    users.set_role("vera", "editor")
    assert c.put("/api/versions/raw/1/description", json={"description": "x"}).status_code == 200


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"set": {"k" * 200: 1}}, 400, "a metadata key is 1 to 128 characters"),
    ({"set": {"big": "x" * (300 << 10)}}, 400, "one edit may take"),
    ({"set": {}, "remove": []}, 400, "change 1 to 100 metadata keys"),
    (b'{"set": {"bad": "\\ud800"}}', 400, "UTF-8"),  # a lone surrogate: valid JSON, not encodable text
])
def test_bad_metadata_edits_change_nothing_and_are_logged(team, caplog, body, status, message):
    store, client, _ = team
    c = client("ed")
    caplog.set_level(logging.WARNING, logger="plait.ui")
    r = patch(c, "/api/versions/raw/1/metadata", body)
    assert r.status_code == status and message in r.json()["error"]
    assert dict(store.get("raw:v1").metadata) == {"rows": 4, "license": "cc-by"}
    assert f"PATCH /api/versions/raw/1/metadata by ed refused ({status})" in caplog.text


def test_invalid_utf8_and_oversized_bodies_are_refused(team, caplog):
    store, client, _ = team
    c = client("ed")
    caplog.set_level(logging.WARNING, logger="plait.ui")
    r = c.put("/api/versions/raw/1/description", content=b'{"description": "\xff\xfe"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": "the request body is not JSON in UTF-8; nothing was changed"}
    r = c.put("/api/versions/raw/1/description", json={"description": "x" * 2_000_000})
    assert r.status_code in (400, 413)
    assert store.get("raw:v1").description == ""
    assert "PUT /api/versions/raw/1/description by ed refused (400): the request body is not JSON in UTF-8" in caplog.text
    assert "/api/versions/raw/1/description" in caplog.text and f"refused ({r.status_code})" in caplog.text


def test_a_proxy_header_is_believed_only_from_the_proxy(demo, users_path):
    store = demo[0]
    auth = AuthConfig(mode="header", header="x-forwarded-user", proxies=("testclient",), users=UsersFile(users_path))
    c = TestClient(create_app(store, auth=auth))
    assert c.get("/api/artifacts").status_code == 401
    s = c.get("/api/session", headers={"X-Forwarded-User": "ada"}).json()
    assert (s["user"], s["role"]) == ("ada", "admin")  # listed in the users file
    s = c.get("/api/session", headers={"X-Forwarded-User": "newcomer"}).json()
    assert (s["user"], s["role"]) == ("newcomer", "viewer")
    elsewhere = AuthConfig(mode="header", header="x-forwarded-user", proxies=("10.0.0.1",))
    r = TestClient(create_app(store, auth=elsewhere)).get("/api/artifacts", headers={"X-Forwarded-User": "ada"})
    assert r.status_code == 401 and "believed only from the authenticating proxy" in r.json()["error"]
