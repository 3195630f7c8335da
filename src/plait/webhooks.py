"""The built-in webhook plugin: POST each lifecycle change to the URLs a store lists, signed.

"When ``model:production`` moves, deploy" without a server: the store setting
``webhooks.urls`` lists URLs, and every process that moves an alias, changes tags, edits a note
or deletes a version POSTs one JSON event to each of them::

    plait config webhooks.urls '["https://deploy.example.com/plait"]'
    plait config webhooks.events '["alias.set"]'        # optional: only these kinds

A store setting is written by anyone who can write the bucket, so it cannot make your machine
reach a URL on its own (see :mod:`plait.formats.settings`). Each user says where their machine
may post, and with which secret, in their own settings file::

    [webhooks]
    allow = ["https://deploy.example.com/"]    # URL prefixes (or $PLAIT_WEBHOOK_ALLOW, commas)
    secret = "…"                               # shared with the receiver (or $PLAIT_WEBHOOK_SECRET)

A URL that is not allowed, or a missing secret, is a warning and nothing is sent.

Each POST carries the JSON event (``id``, ``kind``, ``time``, ``user``, ``run``, ``store``,
``name``, ``spec``, the version, and what changed), ``X-Plait-Event`` (the kind),
``X-Plait-Delivery`` (the event id: deliveries may repeat, receivers drop repeats by it) and
``X-Plait-Signature-256: sha256=<HMAC-SHA256 of the body with the secret>`` (GitHub's scheme).
Redirects are not followed.

Delivery never blocks or fails the user's command: events go into a bounded queue (events past
:data:`MAX_QUEUE` are dropped and counted) that a background thread sends, each up to
:data:`ATTEMPTS` times with a growing pause on a connection error, a timeout, a 429 or a 5xx.
:func:`flush` waits for the queue (the CLI calls it when a command ends, and interpreter exit
waits up to :data:`EXIT_WAIT` seconds); what could not be delivered becomes one
:class:`WebhookWarning` each, and is logged on the ``plait.webhooks`` logger.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from plait.base.places import is_under, parse_place
from plait.errors import PlaitWarning, SettingsError
from plait.formats.settings import WEBHOOK_EVENTS, WEBHOOK_URLS, check_setting
from plait.hookspecs import hookimpl
from plait.store.base import BaseStore
from plait.tracking.nodes import ArtifactVersion, HistoryEntry

ALLOW_ENV = "PLAIT_WEBHOOK_ALLOW"
SECRET_ENV = "PLAIT_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Plait-Signature-256"
#: Events waiting to be sent, at most; more are dropped (and counted in a warning).
MAX_QUEUE = 1000
#: Tries per delivery, and the pause before the second (doubled each time), in seconds.
ATTEMPTS = 3
BACKOFF = 0.5
#: Seconds one POST may take.
TIMEOUT = 5.0
#: Seconds interpreter exit waits for the queue.
EXIT_WAIT = 10.0

log = logging.getLogger("plait.webhooks")


class WebhookWarning(PlaitWarning):
    """A webhook could not be sent: not allowed on this machine, no secret, or no answer."""


@dataclass(frozen=True)
class Delivery:
    """One event to POST to one URL.

    :ivar url: where to.
    :ivar body: the JSON body, exactly as signed.
    :ivar kind: the event kind (``X-Plait-Event``).
    :ivar id: the event id (``X-Plait-Delivery``).
    :ivar secret: the shared secret it is signed with.
    """

    url: str
    body: bytes
    kind: str
    id: str
    secret: str = field(repr=False)


def sign(body: bytes, secret: str) -> str:
    """Return the ``X-Plait-Signature-256`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _opener() -> Any:
    """Return a urllib opener that follows no redirect (a 3xx is an answer, not an invitation to
    post elsewhere); urllib is imported here, by the first delivery, not by every command."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


class Sender:
    """The background thread that POSTs deliveries from a bounded queue, with retries."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=MAX_QUEUE)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures: list[str] = []
        self._dropped = 0
        self._opener: Any = None

    def submit(self, delivery: Delivery) -> None:
        """Queue one delivery; never blocks (a full queue drops it and counts it)."""
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            with self._lock:
                self._dropped += 1
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                if self._thread is None:
                    atexit.register(_at_exit)  # interpreter exit waits for what is queued (bounded)
                self._thread = threading.Thread(target=self._work, name="plait-webhooks", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                problem = self._send(delivery)
            except Exception as exc:  # never let the thread die with deliveries waiting
                problem = f"{type(exc).__name__}: {exc}"
            if problem is not None:
                message = f"webhook {delivery.url} did not take the {delivery.kind} event {delivery.id}: {problem}"
                log.warning("%s", message)
                with self._lock:
                    self._failures.append(message)
            self._queue.task_done()

    def _send(self, delivery: Delivery) -> str | None:
        """POST one delivery, retrying; return what went wrong, or ``None`` once it was taken."""
        import urllib.error
        import urllib.request

        if self._opener is None:
            self._opener = _opener()
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF * 2 ** (attempt - 1))
            request = urllib.request.Request(delivery.url, data=delivery.body, method="POST", headers={
                "Content-Type": "application/json", "User-Agent": "plait-webhooks", "X-Plait-Event": delivery.kind,
                "X-Plait-Delivery": delivery.id, SIGNATURE_HEADER: sign(delivery.body, delivery.secret)})
            try:
                with self._opener.open(request, timeout=TIMEOUT) as answer:
                    answer.read(1 << 16)
                return None
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                if exc.code != 429 and exc.code < 500:
                    return problem  # the receiver refused it: asking again would not help
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"no answer ({reason})"
        return f"{problem} after {ATTEMPTS} tries"

    def flush(self, timeout: float | None = None) -> list[str]:
        """Wait until the queue is sent (at most ``timeout`` seconds); return and forget what failed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        with self._lock:
            failures, self._failures = self._failures, []
            if self._dropped:
                failures.append(f"{self._dropped} webhook events were dropped: more than {MAX_QUEUE} were waiting")
                self._dropped = 0
        left = self._queue.unfinished_tasks
        if left:
            failures.append(f"{left} webhook events were still being sent when plait stopped waiting")
        return failures


_sender = Sender()
_warned: set[str] = set()


def flush(timeout: float | None = None) -> None:
    """Wait until every queued webhook is sent (at most ``timeout`` seconds); warn about each one
    that could not be.

    :raises WebhookWarning: (as a warning) once per failed or dropped delivery.
    """
    for failure in _sender.flush(timeout):
        warnings.warn(failure, WebhookWarning, stacklevel=2)


def _at_exit() -> None:
    flush(EXIT_WAIT)


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, WebhookWarning, stacklevel=4)


def _targets(store: BaseStore, kind: str) -> tuple[list[str], str]:
    """Return the URLs this machine posts ``kind`` events of ``store`` to, and the secret."""
    try:  # checked again as read: a hand-written setting that does not pass sends nothing
        urls = check_setting(WEBHOOK_URLS, store.setting(WEBHOOK_URLS)) or []
        kinds = check_setting(WEBHOOK_EVENTS, store.setting(WEBHOOK_EVENTS))
    except SettingsError as exc:
        _warn_once(f"not posting webhooks: {exc}")
        return [], ""
    if not urls or (kinds and kind not in kinds):
        return [], ""
    settings = store.user_settings
    secret = os.environ.get(SECRET_ENV) or settings.get("webhooks.secret") or ""
    env_allow = [a.strip() for a in os.environ.get(ALLOW_ENV, "").split(",") if a.strip()]
    allow = [*(settings.get("webhooks.allow") or []), *env_allow]
    allowed = [u for u in urls if _allowed(u, allow)]
    for url in urls:
        if url not in allowed:
            _warn_once(f"not posting to webhook {url} (store setting {WEBHOOK_URLS}): this machine allows only "
                       f"[webhooks] allow in {settings.path or 'your settings file'} or ${ALLOW_ENV}")
    if allowed and not (isinstance(secret, str) and secret):
        _warn_once(f"not posting to {', '.join(allowed)}: no secret to sign with; set [webhooks] secret in "
                   f"{settings.path or 'your settings file'} or ${SECRET_ENV}")
        return [], ""
    return allowed, str(secret)


def _allowed(url: str, allow: list[Any]) -> bool:
    try:
        place = parse_place(url)
        return any(isinstance(a, str) and is_under(parse_place(a), place) for a in allow)
    except ValueError:
        return False


def _send(store: BaseStore, change: HistoryEntry, version: ArtifactVersion | None, extra: dict[str, Any]) -> None:
    urls, secret = _targets(store, change.kind)
    if not urls:
        return
    name = change.version.rpartition(":v")[0]
    body = json.dumps({
        "id": change.id, "kind": change.kind, "time": change.time, "user": change.user, "run": change.run,
        "store": {"url": store.url, "id": store.id}, "name": name, "spec": change.version,
        "version": version.to_dict() if version is not None else None, **extra,
    }, sort_keys=True, default=str).encode()
    for url in urls:
        _sender.submit(Delivery(url, body, change.kind, change.id, secret))


@hookimpl
def plait_alias_moved(store: BaseStore, name: str, alias: str, version: ArtifactVersion | None,
                      previous: ArtifactVersion | None, change: HistoryEntry) -> None:
    """POST ``alias.set`` / ``alias.removed``, with where the alias pointed before."""
    _send(store, change, version if version is not None else previous,
          {"alias": alias, "to": version.spec if version else None, "from": previous.spec if previous else None})


@hookimpl
def plait_tags_changed(version: ArtifactVersion, added: list[str], removed: list[str], change: HistoryEntry) -> None:
    """POST ``tags.changed`` with the tags added and removed."""
    _send(version.store, change, version, {"added": added, "removed": removed})


@hookimpl
def plait_version_updated(version: ArtifactVersion, old: dict[str, Any], new: dict[str, Any],
                          change: HistoryEntry) -> None:
    """POST ``version.updated`` with the old and new note or metadata."""
    _send(version.store, change, version, {"old": old, "new": new})


@hookimpl
def plait_version_deleted(version: ArtifactVersion, change: HistoryEntry) -> None:
    """POST ``version.deleted`` (with gc's reason when it expired the version)."""
    _send(version.store, change, version, {"reason": change.detail.get("reason")})
