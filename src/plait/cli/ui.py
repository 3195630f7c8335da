"""The ``plait ui`` command: serve the local dashboard over one store with uvicorn."""

from __future__ import annotations

import ipaddress

import click

from plait.cli.app import Context, main, pass_ctx
from plait.errors import MissingExtraError


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is a loopback address or ``localhost``.

    :param host: a host name or IP address.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_warning(host: str, allow_edit: bool) -> str | None:
    """Return the warning to print when the dashboard binds to a non-loopback address, else ``None``.

    :param host: the address it binds to.
    :param allow_edit: whether edits are accepted.
    """
    if is_loopback(host):
        return None
    who = "anyone who can reach this machine can read" + (" and edit the notes of" if allow_edit else "")
    return (f"plait: warning: binding to {host}: {who} every artifact in this store; "
            "there is no login. Use the default --host 127.0.0.1 unless you mean it.")


def allowed_hosts(host: str, extra: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """Return the ``Host`` names the dashboard answers to: loopback names, the address it binds
    to when that is one address (not ``0.0.0.0``), and ``extra``.

    Every request naming another host is refused, whatever address the server listens on, so a
    page on another site that points its own name at this machine (DNS rebinding) gets nothing.

    :param host: the address the server binds to.
    :param extra: the names given with ``--allowed-host``.
    """
    from plait.ui.app import LOOPBACK_HOSTS

    names = [*LOOPBACK_HOSTS]
    if not is_loopback(host) and host.strip("[]") not in ("0.0.0.0", "::", ""):
        names.append(host.strip("[]"))
    names += [name.strip().lower() for name in extra if name.strip()]
    return tuple(dict.fromkeys(n.lower() for n in names))


def _require_ui() -> None:
    try:
        import fastapi  # noqa: F401
        import markdown_it  # noqa: F401
        import nh3  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"the dashboard needs {exc.name}: pip install 'plait[ui]'", extra="ui") from None


@main.command()
@click.option("--store", "store_url", default=None, metavar="URL", help="Store URL (same as `plait --store URL ui`).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but loopback prints a warning.")
@click.option("--allow-edit", is_flag=True, help="Let the page edit notes (each edit is an event with its author).")
@click.option("--allowed-host", "extra_hosts", multiple=True, metavar="NAME",
              help="Another name the page may be opened by (repeatable; e.g. the machine's DNS name). Requests naming "
                   "any other host are refused: loopback names and the --host address are allowed.")
@pass_ctx
def ui(ctx: Context, store_url: str | None, port: int, host: str, allow_edit: bool, extra_hosts: tuple[str, ...]) -> None:
    """Open the local dashboard: artifacts, versions, notes, runs and lineage graphs."""
    _require_ui()
    if store_url is not None:
        ctx = Context(store_url, ctx.as_json, ctx.storage_options)
    import uvicorn

    from plait.ui.app import create_app

    store = ctx.store
    warning = bind_warning(host, allow_edit)
    if warning:
        click.echo(warning, err=True)
    app = create_app(store, allow_edit=allow_edit, trusted_hosts=allowed_hosts(host, extra_hosts))
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"plait ui: serving {store.url} at http://{shown}:{port}/ ({'editing on' if allow_edit else 'read-only'}); Ctrl+C stops", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
