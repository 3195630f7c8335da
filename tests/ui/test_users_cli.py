"""`plait users`: users and tokens in a server-side file, mode 0600, secrets hashed; `plait ui`
refuses a team dashboard with nobody to log in."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

pytest.importorskip("argon2", reason="logins need the ui extra: pip install 'plait[ui]'")

from plait.cli import main  # noqa: E402


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def test_users_live_hashed_in_a_private_file(tmp_path, monkeypatch):
    path = tmp_path / "conf" / "users.json"
    monkeypatch.setenv("PLAIT_USERS", str(path))
    r = run("users", "add", "ada", "--role", "admin", "--password-stdin", stdin="correct horse\n")
    assert r.exit_code == 0 and f"ada (admin) in {path}" in r.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["users"]["ada"]["password"].startswith("$argon2id$") and "correct horse" not in path.read_text()
    token = run("users", "token", "ada", "--label", "ci").output.split()[0]
    assert token.startswith("plait_") and token.split("_", 2)[2] not in path.read_text()
    listed = json.loads(run("--json", "users", "list").output)
    assert [(u["name"], u["role"]) for u in listed] == [("ada", "admin")]
    assert run("users", "role", "ada", "viewer").output.strip() == "ada is now viewer"
    (tid,) = [t["id"] for t in json.loads(run("--json", "users", "tokens").output)]
    assert run("users", "revoke", tid).exit_code == 0 and run("--json", "users", "tokens").output.strip() == "[]"
    assert run("users", "remove", "ada").exit_code == 0 and "no users in" in run("users", "list").output


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["users", "add", "bad name", "--password-stdin"], "long-enough\n", "a user name is 1-64 letters"),
    (["users", "add", "bob", "--password-stdin"], "short\n", "a password has 8 to 1024 characters"),
    (["users", "remove", "nobody"], None, "no dashboard user 'nobody'"),
    (["users", "token", "nobody"], None, "add them first"),
    (["users", "role", "nobody", "admin"], None, "no dashboard user 'nobody'"),
])
def test_mistakes_are_one_line(tmp_path, monkeypatch, args, stdin, message):
    monkeypatch.setenv("PLAIT_USERS", str(tmp_path / "users.json"))
    r = run(*args, stdin=stdin)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_a_team_dashboard_needs_a_user_first(tmp_path, monkeypatch, file_store):
    monkeypatch.setenv("PLAIT_USERS", str(tmp_path / "users.json"))
    r = run("--store", file_store.url, "ui", "--host", "0.0.0.0")
    assert r.exit_code == 2 and "has no user yet: run `plait users add NAME --role admin`" in r.output
    r = run("--store", file_store.url, "ui", "--trusted-header", "X-Forwarded-User")
    assert r.exit_code == 2 and "--trusted-proxy" in r.output
