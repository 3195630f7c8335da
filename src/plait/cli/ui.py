"""The ``plait ui`` command: serve the dashboard over one store with uvicorn, for one person or a team."""

from __future__ import annotations

import socket

import click

from plait.base.hosts import allowed_hosts, is_loopback
from plait.cli.app import Context, main, pass_ctx
from plait.errors import InvalidInputError, MissingExtraError

__all__ = ["allowed_hosts", "bind_warning", "is_loopback", "ui"]


def bind_warning(host: str, allow_edit: bool) -> str | None:
    """Return the warning to print when the dashboard binds to a non-loopback address, else ``None``.

    :param host: the address it binds to.
    :param allow_edit: whether edits are accepted.
    """
    if is_loopback(host):
        return None
    who = "anyone who can reach this machine can read" + (" and edit the notes of" if allow_edit else "")
    return (f"plait: warning: binding to {host}: {who} every artifact in this store; "
            "there is no login (--login none). Use logins (`plait users add`) or the default --host 127.0.0.1 unless you mean it.")


def listen(host: str, port: int) -> socket.socket:
    """Bind the dashboard's socket before serving, so a taken port is one clear error and the port
    ``--port 0`` picked is known before the address is printed.

    :raises InvalidInputError: when the address cannot be bound.
    """
    address = host[1:-1] if host.startswith("[") else host
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait out TIME_WAIT
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        raise InvalidInputError(f"cannot listen on {host} port {port}: {exc.strerror or exc}; "
                                "pick another --port (0: any free port) or --host") from None
    return sock


def _require_ui() -> None:
    try:
        import argon2  # noqa: F401
        import fastapi  # noqa: F401
        import itsdangerous  # noqa: F401
        import markdown_it  # noqa: F401
        import nh3  # noqa: F401
        import pyarrow  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"the dashboard needs {exc.name}: pip install 'plait[ui]'", extra="ui") from None


@main.command()
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; off loopback, logins are required.")
@click.option("--allow-edit", is_flag=True, help="Without logins: let the page edit (each edit is an event with its author).")
@click.option("--login", type=click.Choice(["none", "users", "header"]), default=None,
              help="How users log in: none (one person on loopback; the default there), users (the users file; "
                   "the default off loopback), header (an authenticating proxy names them).")
@click.option("--users", "users_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="The users file (default: $PLAIT_USERS, else ~/.config/plait/users.json); see `plait users`.")
@click.option("--allowed-host", "extra_hosts", multiple=True, metavar="NAME",
              help="Another name the page may be opened by (repeatable; e.g. the machine's DNS name). Requests naming "
                   "any other host are refused: loopback names and the --host address are allowed.")
@click.option("--trusted-header", default=None, metavar="NAME", help="Header an authenticating proxy names the user in (e.g. X-Forwarded-User).")
@click.option("--trusted-proxy", multiple=True, metavar="ADDRESS", help="Address the trusted header is believed from (repeatable).")
@click.option("--header-role", default="viewer", show_default=True, type=click.Choice(["viewer", "editor", "admin"]),
              help="Role of a proxy-named user the users file does not list.")
@click.option("--session-hours", default=12.0, show_default=True, type=float, help="How long a login lasts.")
@click.option("--secure-cookies/--no-secure-cookies", default=None, help="Mark session cookies Secure (default: when the request is HTTPS).")
@pass_ctx
def ui(ctx: Context, port: int, host: str, allow_edit: bool, login: str | None, users_file: str | None,
       extra_hosts: tuple[str, ...], trusted_header: str | None, trusted_proxy: tuple[str, ...], header_role: str, session_hours: float,
       secure_cookies: bool | None) -> None:
    """Open the dashboard: artifacts, versions, notes, runs and lineage; with logins, for a team."""
    _require_ui()
    import uvicorn

    from plait.ui.app import create_app
    from plait.ui.config import setup

    chosen = setup(login=login, host=host, extra_hosts=extra_hosts, users=users_file, allow_edit=allow_edit, header=trusted_header,
                   proxies=trusted_proxy, header_role=header_role, session_hours=session_hours, secure_cookies=secure_cookies)
    store = ctx.store
    if chosen.auth.mode == "none":
        warning = bind_warning(host, allow_edit)
        if warning:
            click.echo(warning, err=True)
    app = create_app(store, allow_edit=allow_edit, trusted_hosts=chosen.trusted_hosts, auth=chosen.auth)
    sock = listen(host, port)
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    mode = {"none": "editing on" if allow_edit else "read-only", "users": f"logins from {chosen.auth.users.path if chosen.auth.users else ''}",
            "header": f"users named by the {trusted_header} header"}[chosen.auth.mode]
    click.echo(f"plait ui: serving {store.url} at http://{shown}:{port}/ ({mode}); Ctrl+C stops", err=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", proxy_headers=bool(trusted_proxy),
                            forwarded_allow_ips=",".join(trusted_proxy) or None)
    uvicorn.Server(config).run(sockets=[sock])
