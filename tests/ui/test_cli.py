"""`plait ui`: the command serves the dashboard, warns off loopback, and stays out of `plait --help`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from plait.cli.ui import allowed_hosts, bind_warning, is_loopback, listen
from plait.errors import InvalidInputError


def test_loopback_binds_need_no_warning():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert bind_warning("127.0.0.1", allow_edit=True) is None
    assert "anyone who can reach this machine can read every artifact" in bind_warning("0.0.0.0", allow_edit=False)
    assert "and edit the notes of" in bind_warning("192.168.1.5", allow_edit=True)


def test_the_dashboard_answers_only_to_loopback_names_its_address_and_the_names_allowed():
    assert allowed_hosts("127.0.0.1") == ("127.0.0.1", "localhost", "::1")
    assert allowed_hosts("0.0.0.0") == ("127.0.0.1", "localhost", "::1")  # listening everywhere allows no name by itself
    assert allowed_hosts("192.168.1.5", ["Dash.Example"]) == ("127.0.0.1", "localhost", "::1", "192.168.1.5", "dash.example")


def test_plait_help_does_not_import_the_web_stack():
    code = "import sys; from plait.cli import main; print(any(m in sys.modules for m in ('fastapi', 'uvicorn', 'starlette', 'nh3')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_missing_extra_says_what_to_install(file_store):
    code = ("import sys; sys.modules['fastapi'] = None; from plait.cli import main; "
            f"main(['--store', {file_store.url!r}, 'ui'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2 and "plait: error: the dashboard needs fastapi: pip install 'plait[ui]'" in r.stderr


def test_a_port_already_taken_is_one_clear_error(file_store):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "plait", "ui", "--store", file_store.url, "--port", str(port), "--login", "none"],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().endswith(
        f"cannot listen on 127.0.0.1 port {port}: Address already in use; pick another --port (0: any free port) or --host")


def test_an_address_not_on_this_machine_is_one_clear_error():
    with pytest.raises(InvalidInputError, match=r"^cannot listen on 192\.0\.2\.1 port 8765: Cannot assign requested address; "
                                                 r"pick another --port \(0: any free port\) or --host$"):
        listen("192.0.2.1", 8765)  # TEST-NET-1: never this machine's


def test_ui_serves_the_store_and_warns_off_loopback(file_store):
    file_store.log(b"hello", name="greeting", type="result")
    proc = subprocess.Popen([sys.executable, "-m", "plait", "ui", "--store", file_store.url, "--host", "0.0.0.0", "--login", "none", "--port", "0",
                             "--allow-edit", "--allowed-host", "dash.example"], stderr=subprocess.PIPE, text=True)
    try:
        said = ""
        while "serving" not in said and proc.poll() is None:  # the warning, then the address with the port picked
            said += proc.stderr.readline()
        port = int(re.search(r"serving .* at http://0\.0\.0\.0:(\d+)/", said).group(1))
        body = None
        deadline = time.monotonic() + 60  # a cold start imports fastapi and uvicorn
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/artifacts", timeout=2) as r:
                    body = json.load(r)
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None and [a["name"] for a in body["items"]] == ["greeting"]

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/session", timeout=10) as r:
            csrf = json.load(r)["csrf"]

        def status(host: str, method: str = "GET") -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/versions/greeting/0/description", method=method,
                                             headers={"Host": host, "Content-Type": "application/json", "X-CSRF-Token": csrf},
                                             data=b'{"description": "rebound"}' if method == "PUT" else None)
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert status(f"dash.example:{port}") == 405  # an allowed name reaches the routes (GET is not one here)
        assert status(f"attacker.example:{port}", "PUT") == 400  # DNS rebinding: a foreign name, even bound to 0.0.0.0
        assert file_store.get("greeting").description == ""
        assert status(f"dash.example:{port}", "PUT") == 200
    finally:
        proc.terminate()
        _, rest = proc.communicate(timeout=10)
    err = said + rest
    assert "warning: binding to 0.0.0.0" in err and f"serving {file_store.url} at http://0.0.0.0:{port}/ (editing on)" in err
