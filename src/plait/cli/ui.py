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
@pass_ctx
def ui(ctx: Context, store_url: str | None, port: int, host: str, allow_edit: bool) -> None:
    """Open the local dashboard: artifacts, versions, notes, runs and lineage graphs."""
    _require_ui()
    if store_url is not None:
        ctx = Context(store_url, ctx.as_json, ctx.storage_options)
    import uvicorn

    from plait.ui.app import LOOPBACK_HOSTS, create_app

    store = ctx.store
    warning = bind_warning(host, allow_edit)
    if warning:
        click.echo(warning, err=True)
    trusted = LOOPBACK_HOSTS if is_loopback(host) else None
    app = create_app(store, allow_edit=allow_edit, trusted_hosts=trusted)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"plait ui: serving {store.url} at http://{shown}:{port}/ ({'editing on' if allow_edit else 'read-only'}); Ctrl+C stops", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
