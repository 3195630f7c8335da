"""How a dashboard is set up, from ``plait ui``'s options or from environment variables (the ASGI app).

The login mode is chosen once here: ``none`` for one person on loopback, ``users`` (the users
file) for a team, ``header`` behind an authenticating proxy. A team dashboard with no user yet
is refused with what to run, rather than served open.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.base.hosts import LOOPBACK_HOSTS, allowed_hosts, is_loopback
from plait.base.paths import dashboard_users_path
from plait.errors import InvalidInputError
from plait.ui.auth import MODES, AuthConfig
from plait.ui.users import UsersFile, check_role

__all__ = ["LOOPBACK_HOSTS", "Setup", "from_environment", "setup"]


@dataclass(frozen=True)
class Setup:
    """Everything a dashboard needs besides its store.

    :ivar auth: how users are known.
    :ivar trusted_hosts: the ``Host`` names it answers to (:func:`plait.base.hosts.allowed_hosts`).
    """

    auth: AuthConfig
    trusted_hosts: tuple[str, ...]


def setup(*, login: str | None, host: str | None, extra_hosts: tuple[str, ...] = (), users: str | os.PathLike[str] | None = None,
          allow_edit: bool = False, header: str | None = None, proxies: tuple[str, ...] = (), header_role: str = "viewer",
          session_hours: float = 12, secure_cookies: bool | None = None) -> Setup:
    """Choose the login mode and check it can work.

    :param login: ``none``, ``users`` or ``header``; ``None`` chooses: ``header`` with a header,
        ``users`` with a users file or off loopback, else ``none``.
    :param host: the address the dashboard binds to; ``None`` when another server binds (the ASGI
        app), which counts as off loopback.
    :param extra_hosts: more ``Host`` names it answers to besides loopback and ``host``.
    :raises InvalidInputError: for a mode that cannot work (no users yet, a header without proxies).
    """
    loopback = host is not None and is_loopback(host)
    if login is None:
        login = "header" if header else "users" if users is not None or not loopback else "none"
    if login not in MODES:
        raise InvalidInputError(f"--login must be one of {', '.join(MODES)}, not {login!r}")
    check_role(header_role)
    path = Path(users) if users is not None else dashboard_users_path()
    users_file = UsersFile(path) if login != "none" else None
    if login == "users" and users_file is not None and not users_file.users():
        raise InvalidInputError(
            f"a team dashboard needs logins and {path} has no user yet: run `plait users add NAME --role admin`"
            + ("" if loopback else ", or pass --login none to serve it read-only to anyone who can reach it"))
    if login == "header" and not (header and proxies):
        raise InvalidInputError("--trusted-header needs --trusted-proxy ADDRESS: the header is believed only from the proxy")
    if session_hours <= 0:
        raise InvalidInputError("--session-hours must be more than 0")
    auth = AuthConfig(mode=login, users=users_file, allow_edit=allow_edit, header=header.lower() if header else None,
                      proxies=tuple(proxies), header_role=header_role, session_seconds=int(session_hours * 3600),
                      secure_cookies=secure_cookies)
    return Setup(auth, allowed_hosts(host, extra_hosts))


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def from_environment(env: Mapping[str, str] = os.environ) -> tuple[str | None, dict[str, Any], Setup]:
    """Read a dashboard's setup from environment variables (for the ASGI app).

    ``PLAIT_STORE``, ``PLAIT_STORE_OPTIONS`` (a JSON object), ``PLAIT_UI_LOGIN`` (default
    ``users``), ``PLAIT_USERS``, ``PLAIT_UI_TRUSTED_HEADER``, ``PLAIT_UI_TRUSTED_PROXIES`` and
    ``PLAIT_UI_ALLOWED_HOSTS`` (comma-separated; the names besides loopback that the dashboard
    answers to: the name people open it by, as the proxy passes it on), ``PLAIT_UI_HEADER_ROLE``,
    ``PLAIT_UI_SESSION_HOURS``, ``PLAIT_UI_SECURE_COOKIES`` and ``PLAIT_UI_ALLOW_EDIT`` (``1``/``0``).

    :returns: the store URL, its storage options and the setup.
    :raises InvalidInputError: for a value that cannot work.
    """
    try:
        options = json.loads(env.get("PLAIT_STORE_OPTIONS") or "{}")
        hours = float(env.get("PLAIT_UI_SESSION_HOURS") or 12)
    except ValueError as exc:
        raise InvalidInputError(f"PLAIT_STORE_OPTIONS must be a JSON object and PLAIT_UI_SESSION_HOURS a number: {exc}") from None
    result = setup(login=env.get("PLAIT_UI_LOGIN") or "users", host=None, extra_hosts=_list(env.get("PLAIT_UI_ALLOWED_HOSTS")),
                   users=env.get("PLAIT_USERS") or None,
                   allow_edit=bool(_flag(env.get("PLAIT_UI_ALLOW_EDIT"))), header=env.get("PLAIT_UI_TRUSTED_HEADER") or None,
                   proxies=_list(env.get("PLAIT_UI_TRUSTED_PROXIES")), header_role=env.get("PLAIT_UI_HEADER_ROLE") or "viewer",
                   session_hours=hours, secure_cookies=_flag(env.get("PLAIT_UI_SECURE_COOKIES")))
    return env.get("PLAIT_STORE") or None, options, result
