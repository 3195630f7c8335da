"""The dashboard's users and API tokens: one JSON file on the server's side, secrets hashed with Argon2.

Where it lives is :func:`plait.base.paths.dashboard_users_path` (``$PLAIT_USERS``, else
``~/.config/plait/users.json``) or ``plait ui --users FILE``; never inside a store, which every
writer of the bucket can change. The file is written whole to a temporary name and renamed
into place, readable by its owner only (mode 0600). It holds:

- ``secret``: the key that signs session cookies (every worker of one server reads the same);
- ``users``: ``{name: {"role", "password" (an Argon2id hash), "generation", "created_at"}}``;
  ``generation`` grows when the password changes, which ends every session signed before;
- ``tokens``: ``{id: {"user", "hash", "label", "created_at"}}``. A token reads
  ``plait_<id>_<secret>``: the id finds the entry, the secret is checked against its hash.

A running server sees every change (a user removed, a role changed) on its next request: the
file is read again when its modification time or size changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.base.ids import utcnow
from plait.errors import AuthenticationError, InvalidInputError, MissingExtraError, NotFoundError, StoreError

ROLES = ("viewer", "editor", "admin")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_PREFIX = "plait_"


def rank(role: str) -> int:
    """Return how much a role may do: viewer 0, editor 1, admin 2 (unknown: -1)."""
    return ROLES.index(role) if role in ROLES else -1


def check_role(role: str) -> str:
    """Return ``role`` if it is one of :data:`ROLES`, else raise :class:`InvalidInputError`."""
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_user_name(name: str) -> str:
    """Return ``name`` if it can name a dashboard user (letters, digits, ``._@-``, up to 64), else raise."""
    if not isinstance(name, str) or not _USER.fullmatch(name):
        raise InvalidInputError(f"a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit; "
                                f"{str(name)[:80]!r} is not")
    return name


def _hasher() -> Any:
    try:
        from argon2 import PasswordHasher
    except ImportError:
        raise MissingExtraError("dashboard logins need argon2-cffi: pip install 'plait[ui]'", extra="ui") from None
    return PasswordHasher()


def _verify(hashed: str, secret: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(hashed, secret))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class User:
    """A dashboard user as the file holds it (no secret).

    :ivar name: the login name.
    :ivar role: ``viewer``, ``editor`` or ``admin``.
    :ivar generation: grows when the password changes; sessions carry it.
    :ivar created_at: ISO UTC time the user was added.
    """

    name: str
    role: str
    generation: int
    created_at: str


class UsersFile:
    """The users and tokens of one dashboard, read from and written to one JSON file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Use the users file at ``path`` (it need not exist yet)."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[float, int] | None = None
        self._data: dict[str, Any] = {}
        self._verified: dict[str, tuple[str, float]] = {}

    # -- reading ----------------------------------------------------------------------------------

    def data(self) -> dict[str, Any]:
        """Return the file's content, read again when it changed on disk (empty when there is none)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {"format": 1, "users": {}, "tokens": {}}
        with self._lock:
            if self._seen != (st.st_mtime, st.st_size):
                try:
                    data = json.loads(self.path.read_bytes())
                except (OSError, ValueError) as exc:
                    raise StoreError(f"cannot read the dashboard users file {self.path}: {exc}") from None
                if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
                    raise StoreError(f"{self.path} is not a plait users file; move it away or fix it")
                data.setdefault("tokens", {})
                self._data, self._seen = data, (st.st_mtime, st.st_size)
            return self._data

    def users(self) -> list[User]:
        """Return every user, by name."""
        return [self._user(n, u) for n, u in sorted(self.data()["users"].items())]

    def user(self, name: str) -> User | None:
        """Return the user called ``name``, or ``None``."""
        found = self.data()["users"].get(name)
        return self._user(name, found) if isinstance(found, dict) else None

    @staticmethod
    def _user(name: str, u: dict[str, Any]) -> User:
        return User(name, u.get("role", "viewer"), int(u.get("generation", 1)), u.get("created_at", ""))

    def secret(self) -> str | None:
        """Return the key that signs sessions, if the file has one."""
        return self.data().get("secret")

    def check_password(self, name: str, password: str) -> User | None:
        """Return the user if ``password`` is theirs, else ``None`` (the same time is spent either way)."""
        entry = self.data()["users"].get(name)
        # hash against a dummy for an unknown user, so timing does not tell which names exist
        hashed = entry.get("password", "") if isinstance(entry, dict) else _DUMMY.value()
        ok = _verify(hashed, password) if 0 < len(password) <= MAX_PASSWORD else False
        return self._user(name, entry) if ok and isinstance(entry, dict) else None

    def check_token(self, token: str) -> User:
        """Return the user a token belongs to.

        :raises AuthenticationError: for a malformed or unknown token, or one whose user was removed.
        """
        if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
            raise AuthenticationError("that is not a plait API token (plait_<id>_<secret>); create one with `plait users token NAME`")
        token_id, _, secret = token[len(TOKEN_PREFIX):].partition("_")
        entry = self.data()["tokens"].get(token_id)
        # Argon2 costs tens of milliseconds by design: a token checked once is trusted for a minute
        # (by a digest of the whole token), and a revoked one fails at once, its entry being gone
        key = hashlib.sha256(token.encode()).hexdigest()
        known = self._verified.get(key)
        fresh = known is not None and known[0] == token_id and known[1] > time.monotonic()
        if not isinstance(entry, dict) or not (fresh or _verify(entry.get("hash", ""), secret)):
            raise AuthenticationError("unknown or revoked API token; create a new one with `plait users token NAME`")
        if not fresh:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified[key] = (token_id, time.monotonic() + 60)
        user = self.user(entry.get("user", ""))
        if user is None:
            raise AuthenticationError(f"the user of this API token ({entry.get('user')}) was removed; the token no longer works")
        return user

    # -- writing ----------------------------------------------------------------------------------

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _change(self) -> dict[str, Any]:
        data = json.loads(json.dumps(self.data()))  # a copy: the cached one stays as read
        data.setdefault("format", 1)
        data.setdefault("secret", secrets.token_urlsafe(32))
        return data

    def add(self, name: str, role: str, password: str) -> User:
        """Add a user, or set the password and role of an existing one (ending their sessions).

        :raises InvalidInputError: for a bad name or role, or a password shorter than 8 characters.
        """
        check_user_name(name)
        check_role(role)
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InvalidInputError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        data = self._change()
        old = data["users"].get(name, {})
        data["users"][name] = {"role": role, "password": _hasher().hash(password),
                               "generation": int(old.get("generation", 0)) + 1, "created_at": old.get("created_at", utcnow())}
        self._write(data)
        return self._user(name, data["users"][name])

    def set_role(self, name: str, role: str) -> User:
        """Change a user's role (it applies to their next request).

        :raises NotFoundError: for an unknown user.
        """
        check_role(role)
        data = self._change()
        if name not in data["users"]:
            raise NotFoundError(f"no dashboard user {name!r} in {self.path} (list them with `plait users list`)", name=name)
        data["users"][name]["role"] = role
        self._write(data)
        return self._user(name, data["users"][name])

    def remove(self, name: str) -> None:
        """Remove a user and every token of theirs; their sessions end at their next request.

        :raises NotFoundError: for an unknown user.
        """
        data = self._change()
        if data["users"].pop(name, None) is None:
            raise NotFoundError(f"no dashboard user {name!r} in {self.path} (list them with `plait users list`)", name=name)
        data["tokens"] = {k: t for k, t in data["tokens"].items() if t.get("user") != name}
        self._write(data)

    def new_token(self, name: str, label: str = "") -> str:
        """Create an API token for ``name`` and return it (shown once: only its hash is kept).

        :raises NotFoundError: for an unknown user.
        """
        data = self._change()
        if name not in data["users"]:
            raise NotFoundError(f"no dashboard user {name!r} in {self.path}; add them first with `plait users add`", name=name)
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        data["tokens"][token_id] = {"user": name, "hash": _hasher().hash(secret), "label": label[:100], "created_at": utcnow()}
        self._write(data)
        return f"{TOKEN_PREFIX}{token_id}_{secret}"

    def tokens(self) -> list[dict[str, str]]:
        """Return every token's id, user, label and creation time (never a secret)."""
        return [{"id": k, "user": t.get("user", ""), "label": t.get("label", ""), "created_at": t.get("created_at", "")}
                for k, t in sorted(self.data()["tokens"].items())]

    def revoke(self, token_id: str) -> None:
        """Delete a token by its id.

        :raises NotFoundError: for an unknown id.
        """
        data = self._change()
        if data["tokens"].pop(token_id, None) is None:
            raise NotFoundError(f"no token {token_id!r} in {self.path} (list them with `plait users tokens`)", name=token_id)
        self._write(data)


class _Dummy:
    """A hash to check unknown names against, made once, so a failed login costs the same either way."""

    def __init__(self) -> None:
        self._value: str | None = None

    def value(self) -> str:
        if self._value is None:
            self._value = _hasher().hash(secrets.token_urlsafe(16))
        return self._value


_DUMMY = _Dummy()
