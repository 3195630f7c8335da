"""Who is asking, and may they: the dashboard's three ways to know a user, sessions, CSRF and login limits.

- ``none`` (the default on loopback): one person on their own machine, as the OS user; they
  may edit only when the dashboard was started with ``--allow-edit`` (then as an admin: it is
  their store).
- ``users``: logins and API tokens from a users file (:mod:`plait.ui.users`). A login sets a
  session cookie signed with the file's secret (itsdangerous), HttpOnly, SameSite=Strict,
  Secure over HTTPS, expiring after ``session_seconds``; a changed password or a removed user
  ends it. An API token goes in ``Authorization: Bearer plait_…``.
- ``header``: an authenticating proxy in front (oauth2-proxy style) names the user in a header;
  it is believed only from the proxy addresses listed. The user's role comes from the users
  file when it lists them, else ``header_role``.

Every write must carry the CSRF token ``/api/session`` gives (header ``X-CSRF-Token``), except
with a bearer token, which a browser never sends on its own. Failed logins are limited per
address and per name. Every refusal is logged on the ``plait.ui`` logger.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from plait.errors import AccessError, AuthenticationError, InvalidInputError, ReadOnlyError
from plait.ui.users import UsersFile, rank

log = logging.getLogger("plait.ui")

COOKIE = "plait_session"
MODES = ("none", "users", "header")
#: Failed logins allowed per address and per name within :data:`LOGIN_WINDOW` seconds.
LOGIN_FAILURES, LOGIN_WINDOW = 5, 900.0


@dataclass(frozen=True)
class Identity:
    """Who a request comes from.

    :ivar name: the user name events are recorded with.
    :ivar role: ``viewer``, ``editor`` or ``admin``.
    :ivar via: ``local``, ``session``, ``token`` or ``header``.
    :ivar csrf: the token a write must echo (``None`` for bearer tokens, which need none).
    """

    name: str
    role: str
    via: str
    csrf: str | None


class LoginLimiter:
    """Count failed logins per key (an address, a name) in a sliding window."""

    def __init__(self, failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW) -> None:
        """Allow ``failures`` failed logins per key within ``window`` seconds."""
        self.failures, self.window = failures, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, *keys: str) -> float:
        """Return how many seconds until any of ``keys`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            worst = 0.0
            for key in keys:
                times = self._seen.get(key)
                while times and times[0] < now - self.window:
                    times.popleft()
                if times and len(times) >= self.failures:
                    worst = max(worst, times[0] + self.window - now)
            return worst

    def failed(self, *keys: str) -> None:
        """Record one failed login for each key."""
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen.clear()
            for key in keys:
                self._seen.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of ``keys`` after a good login."""
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)


@dataclass
class AuthConfig:
    """How a dashboard knows its users.

    :ivar mode: ``none``, ``users`` or ``header``.
    :ivar users: the users file (``users`` mode; optional in ``header`` mode for roles).
    :ivar allow_edit: in ``none`` mode, whether the local user may edit.
    :ivar header: the header an authenticating proxy names the user in (``header`` mode).
    :ivar proxies: the peer addresses that header is believed from.
    :ivar header_role: the role of a proxy-named user the users file does not list.
    :ivar session_seconds: how long a login lasts.
    :ivar secure_cookies: mark cookies Secure always (``True``), never (``False``) or over HTTPS only (``None``).
    """

    mode: str = "none"
    users: UsersFile | None = None
    allow_edit: bool = False
    header: str | None = None
    proxies: tuple[str, ...] = ()
    header_role: str = "viewer"
    session_seconds: int = 12 * 3600
    secure_cookies: bool | None = None
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    _secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"auth mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.mode == "users" and self.users is None:
            raise InvalidInputError("the users mode needs a users file (--users FILE)")
        if self.mode == "header" and not (self.header and self.proxies):
            raise InvalidInputError("the header mode needs the header's name and the proxy addresses it comes from")

    @property
    def secret(self) -> str:
        """Return the key that signs sessions and CSRF tokens: the users file's, else one made for this process."""
        found = self.users.secret() if self.users is not None and self.users.path.exists() else None
        return found or self._secret

    def _serializer(self) -> Any:
        from itsdangerous import URLSafeTimedSerializer

        return URLSafeTimedSerializer(self.secret, salt="plait-session")

    def csrf_for(self, name: str, nonce: str = "") -> str:
        """Return the CSRF token of a user (and session): an HMAC only this server can make."""
        return hmac.new(self.secret.encode(), f"csrf:{name}:{nonce}".encode(), hashlib.sha256).hexdigest()[:40]

    # -- sessions ---------------------------------------------------------------------------------

    def session_cookie(self, name: str, generation: int) -> tuple[str, str]:
        """Return a signed session cookie value for a user who just logged in, and its CSRF token."""
        nonce = secrets.token_hex(8)
        return self._serializer().dumps({"u": name, "g": generation, "n": nonce}), self.csrf_for(name, nonce)

    def _from_session(self, cookie: str) -> Identity:
        from itsdangerous import BadSignature, SignatureExpired

        assert self.users is not None
        try:
            data = self._serializer().loads(cookie, max_age=self.session_seconds)
        except SignatureExpired:
            raise AuthenticationError("your session expired; log in again") from None
        except BadSignature:
            raise AuthenticationError("this session is not one this dashboard signed; log in again") from None
        user = self.users.user(str(data.get("u", "")))
        if user is None or user.generation != data.get("g"):
            raise AuthenticationError("this session ended (the user was removed or their password changed); log in again")
        return Identity(user.name, user.role, "session", self.csrf_for(user.name, str(data.get("n", ""))))

    # -- who is asking --------------------------------------------------------------------------

    def identify(self, headers: Any, cookies: dict[str, str], peer: str | None) -> Identity | None:
        """Return who a request comes from, ``None`` when it carries no login.

        :raises AuthenticationError: for a wrong token, an expired or forged session, or a
            proxy header from an address that is not a listed proxy.
        """
        if self.mode == "none":
            from plait.store.base import current_user

            name = current_user()
            return Identity(name, "admin" if self.allow_edit else "viewer", "local", self.csrf_for("(local)"))
        if self.mode == "header":
            return self._from_header(headers, peer)
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            assert self.users is not None
            user = self.users.check_token(auth[7:].strip())
            return Identity(user.name, user.role, "token", None)
        cookie = cookies.get(COOKIE)
        return self._from_session(cookie) if cookie else None

    def _from_header(self, headers: Any, peer: str | None) -> Identity | None:
        assert self.header is not None
        value = headers.get(self.header)
        if value is None:
            return None
        if peer not in self.proxies:
            raise AuthenticationError(f"a {self.header} header is believed only from the authenticating proxy; "
                                      f"this request came from {peer}")
        name = value.strip()[:128]
        if not name:
            return None
        listed = self.users.user(name) if self.users is not None and self.users.path.exists() else None
        role = listed.role if listed is not None else self.header_role
        return Identity(name, role, "header", self.csrf_for(name))

    # -- logins ---------------------------------------------------------------------------------

    def login(self, name: str, password: str, peer: str | None) -> tuple[Identity, str]:
        """Check a login and return the identity and its session cookie value.

        :raises AccessError: when too many logins failed lately (``retry_after`` seconds to wait).
        :raises AuthenticationError: for a wrong name or password.
        """
        if self.mode != "users" or self.users is None:
            raise InvalidInputError(f"this dashboard does not take logins (its users come from {self.mode!r})")
        keys = (f"peer:{peer}", f"name:{name.lower()[:128]}")
        wait = self.limiter.wait(*keys)
        if wait > 0:
            log.warning("login refused for %r from %s: too many failed attempts", name[:128], peer)
            error = TooManyLogins(f"too many failed logins; try again in {int(wait) + 1} s")
            error.retry_after = int(wait) + 1
            raise error
        user = self.users.check_password(name, password)
        if user is None:
            self.limiter.failed(*keys)
            log.warning("login failed for %r from %s", name[:128], peer)
            raise AuthenticationError("wrong user name or password")
        self.limiter.succeeded(*keys)
        cookie, csrf = self.session_cookie(user.name, user.generation)
        log.info("%s logged in from %s", user.name, peer)
        return Identity(user.name, user.role, "session", csrf), cookie


class TooManyLogins(AccessError):
    """Too many failed logins from one address or for one name lately (HTTP 429).

    :ivar retry_after: seconds until another try is accepted.
    """

    retry_after: int = 0


def require(identity: Identity | None, role: str, what: str, *, allow_edit_hint: bool = False) -> Identity:
    """Return ``identity`` if it may do something that needs ``role``, else raise (and log).

    :param what: what is being done, for the message (``edit notes``).
    :raises AuthenticationError: when nobody is logged in.
    :raises ReadOnlyError: in the local mode without ``--allow-edit``.
    :raises AccessError: when the role is too low.
    """
    if identity is None:
        raise AuthenticationError(f"log in to {what}")
    if rank(identity.role) >= rank(role):
        return identity
    log.warning("refused: %s (%s) may not %s", identity.name, identity.role, what)
    if allow_edit_hint and identity.via == "local":
        raise ReadOnlyError(f"editing is off: restart the dashboard with `plait ui --allow-edit` to {what}")
    raise AccessError(f"{identity.name} is a {identity.role}; to {what} takes an {role} (ask an admin: `plait users role NAME {role}`)")
