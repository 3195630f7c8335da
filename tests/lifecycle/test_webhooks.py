"""The built-in webhook plugin against a real HTTP server on loopback: each change is POSTed as
signed JSON to the URLs of the store setting, only where this user allows it; a receiver that
fails is retried, one that never answers is a warning, and the user's command never fails."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plait import SettingsError, Store, webhooks

SECRET = "s3cr3t"


class Receiver:
    """A loopback HTTP server that records every POST and answers with the codes it is given."""

    def __init__(self, codes: list[int] | None = None) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.codes = list(codes or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = receiver.codes.pop(0) if receiver.codes else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def allow(isolated: Path, monkeypatch: pytest.MonkeyPatch):
    """Write this user's [webhooks] settings: the URL prefixes allowed and the secret."""
    monkeypatch.setattr(webhooks, "BACKOFF", 0.01)  # retries without waiting (what is retried is the point)

    def write(*prefixes: str, secret: str = SECRET) -> None:
        listed = ", ".join(json.dumps(p) for p in prefixes)
        (isolated / "_config.toml").write_text(f"[webhooks]\nallow = [{listed}]\nsecret = {json.dumps(secret)}\n")

    return write


def _fresh(store: Store) -> Store:
    return Store(store.url, storage_options=store.storage_options)  # reads the user settings again


def test_each_change_is_posted_signed_to_the_urls_of_the_store(any_store: Store, receiver: Receiver, allow) -> None:
    allow(receiver.url.rsplit("/", 1)[0] + "/")
    any_store.set_setting("webhooks.urls", [receiver.url])
    store = _fresh(any_store)
    v0 = store.log(b"0", name="model", type="model")
    v1 = store.log(b"1", name="model", type="model", aliases=["production"])
    v0.set_alias("production")
    v1.add_tags("eu")
    v1.update(description="retrained")
    v1.delete()
    webhooks.flush()
    bodies = receiver.bodies()
    assert [(b["kind"], b["spec"]) for b in bodies] == [
        ("alias.set", "model:v1"), ("alias.set", "model:v0"), ("tags.changed", "model:v1"),
        ("version.updated", "model:v1"), ("version.deleted", "model:v1")]
    moved = bodies[1]
    assert (moved["alias"], moved["to"], moved["from"], moved["store"]["url"]) == ("production", "model:v0", "model:v1", store.url)
    assert moved["version"]["digest"] == v0.digest and bodies[2]["added"] == ["eu"]
    for headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-plait-signature-256"] == expected
        assert headers["x-plait-event"] == json.loads(body)["kind"] and headers["content-type"] == "application/json"
        assert headers["x-plait-delivery"] == json.loads(body)["id"]


def test_only_the_kinds_the_store_asks_for_are_sent(store: Store, receiver: Receiver, allow) -> None:
    allow(receiver.url)
    store.set_setting("webhooks.urls", [receiver.url])
    store.set_setting("webhooks.events", ["alias.set"])
    store = _fresh(store)
    store.log(b"0", name="model", aliases=["production"], tags=["eu"])
    webhooks.flush()
    assert [b["kind"] for b in receiver.bodies()] == ["alias.set"]


def test_a_url_this_user_does_not_allow_is_never_posted_to(store: Store, receiver: Receiver, allow) -> None:
    allow("https://deploy.example.com/")
    store.set_setting("webhooks.urls", [receiver.url])
    store = _fresh(store)
    with pytest.warns(webhooks.WebhookWarning, match=r"not posting to webhook http://127\.0\.0\.1:\d+/hook .*\[webhooks\] allow"):
        store.log(b"0", name="model", aliases=["production"])
    webhooks.flush()
    assert receiver.requests == []


def test_without_a_secret_nothing_is_sent(store: Store, receiver: Receiver, allow) -> None:
    allow(receiver.url, secret="")
    store.set_setting("webhooks.urls", [receiver.url])
    store = _fresh(store)
    with pytest.warns(webhooks.WebhookWarning, match="no secret to sign with"):
        store.log(b"0", name="other-model", aliases=["production"])
    webhooks.flush()
    assert receiver.requests == []


def test_a_failing_receiver_is_retried_until_it_takes_the_event(store: Store, allow) -> None:
    flaky = Receiver(codes=[503, 500])
    try:
        allow(flaky.url)
        store.set_setting("webhooks.urls", [flaky.url])
        store = _fresh(store)
        store.log(b"0", name="model", aliases=["production"])
        webhooks.flush()
        assert len(flaky.requests) == 3 and len({body for _, body in flaky.requests}) == 1  # the same delivery
    finally:
        flaky.close()


def test_a_url_that_does_not_answer_is_one_warning_and_the_command_succeeds(store: Store, allow, store_cli) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    allow(dead)
    store.set_setting("webhooks.urls", [dead])
    store.log(b"0", name="model")
    result = store_cli(store, "alias", "model:v0", "production")
    assert store.get("model:production").spec == "model:v0"  # the change stands
    warning = [line for line in result.stderr.splitlines() if "webhook" in line]
    assert len(warning) == 1 and warning[0].startswith(f"plait: warning: webhook {dead} did not take the alias.set event")
    assert "after 3 tries" in warning[0]


def test_a_receiver_that_refuses_is_not_asked_again(store: Store, allow) -> None:
    refusing = Receiver(codes=[401])
    try:
        allow(refusing.url)
        store.set_setting("webhooks.urls", [refusing.url])
        store = _fresh(store)
        store.log(b"0", name="model", aliases=["production"])
        with pytest.warns(webhooks.WebhookWarning, match="HTTP 401"):
            webhooks.flush()
        assert len(refusing.requests) == 1
    finally:
        refusing.close()


def test_the_queue_is_bounded_and_never_blocks(store: Store, receiver: Receiver, allow, monkeypatch) -> None:
    monkeypatch.setattr(webhooks, "MAX_QUEUE", 2)
    sender = webhooks.Sender()
    gate = threading.Event()
    monkeypatch.setattr(sender, "_send", lambda delivery: gate.wait() and None)
    for i in range(5):
        sender.submit(webhooks.Delivery(receiver.url, b"{}", "alias.set", str(i), SECRET))
    gate.set()
    failures = sender.flush(timeout=30)
    assert any("were dropped" in f for f in failures)


@pytest.mark.parametrize("value, message", [
    ('["ftp://example.com/x"]', "is not an http(s) URL"),
    ('"https://example.com"', "must be a list"),
    ('["https://"]', "is not an http(s) URL"),
])
def test_bad_webhook_settings_are_refused(file_store: Store, store_cli, value, message) -> None:
    result = store_cli(file_store, "config", "webhooks.urls", value, code=2)
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    with pytest.raises(SettingsError):
        file_store.set_setting("webhooks.events", ["run.started"])
    assert file_store.settings() == {}
