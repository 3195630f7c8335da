"""``plait config``: the store's shared settings (list, show, set, unset, history), and this user's."""

from __future__ import annotations

import json
from typing import Any

import click

from plait.cli.app import Context, main, pass_ctx


@main.command("config")
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove the setting KEY.")
@click.option("--history", is_flag=True, help="Show every change of the store's settings (or of KEY).")
@click.option("--user", "user_file", is_flag=True, help="Show this user's settings file instead (never the store's).")
@pass_ctx
def config(ctx: Context, key: str | None, value: str | None, unset: bool, history: bool, user_file: bool) -> None:
    """List the store's settings, show KEY, set KEY to VALUE (JSON when it parses, else text), or --unset KEY."""
    from plait.errors import InvalidInputError

    if user_file:
        return _show_user_settings(ctx)
    if history:
        changes = ctx.store.setting_history(key)
        ctx.emit([c.__dict__ for c in changes], "\n".join(str(c) for c in changes) or "no setting was ever changed")
        return None
    if unset and (key is None or value is not None):
        raise InvalidInputError("--unset takes one KEY and no VALUE: plait config KEY --unset")
    if key is None:
        return _list(ctx)
    if value is None and not unset:
        return _show(ctx, key)
    new = None if unset else _parse_value(value or "")
    changed = ctx.store.set_setting(key, new)
    state = "unset" if new is None else f"= {json.dumps(ctx.store.setting(key))}"
    ctx.emit({"key": key, "value": ctx.store.setting(key), "changed": changed},
             f"{key} {state}" + ("" if changed else " (unchanged)"))
    return None


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _list(ctx: Context) -> None:
    from plait.formats.settings import KNOWN

    found = ctx.store.settings()
    lines = [f"{k} = {json.dumps(v)}" for k, v in found.items()]
    lines += [f"# {k} (not set): {spec.doc}" for k, spec in sorted(KNOWN.items()) if k not in found]
    ctx.emit(found, "\n".join(lines) or "no settings")


def _show(ctx: Context, key: str) -> None:
    from plait.errors import NotFoundError

    missing = object()
    got = ctx.store.setting(key, missing)
    if got is missing:
        names = ", ".join(ctx.store.settings()) or "none"
        raise NotFoundError(f"the store has no setting {key!r} (set: {names}); set it with: plait config {key} VALUE", name=key)
    ctx.emit(got, json.dumps(got))


def _show_user_settings(ctx: Context) -> None:
    from plait.base.paths import user_config_path

    settings = ctx.user_settings()
    storage = {prefix: sorted(options) for prefix, options in settings.storage.items()}  # option names, never secrets
    data = {"file": settings.path or str(user_config_path()), "exists": bool(settings.path),
            "references_allow": list(settings.allow), "storage": storage}
    lines = [f"file        {data['file']}" + ("" if settings.path else " (not there: no user settings)"),
             f"references  allow = {json.dumps(list(settings.allow))}"]
    lines += [f"storage     {prefix or '(every URL)'}: {', '.join(keys)}" for prefix, keys in storage.items()]
    ctx.emit(data, "\n".join(lines))
