"""The ``plait users`` commands: the dashboard's users, their roles and API tokens (a file on this server)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from plait.cli.app import Context, main, pass_ctx, table

if TYPE_CHECKING:
    from plait.ui.users import UsersFile

_FILE = click.option("--users", "users_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                     help="The users file (default: $PLAIT_USERS, else ~/.config/plait/users.json).")


def _open(users_file: str | None) -> UsersFile:
    # plait.ui needs the ui extra: imported when a command runs, so `plait --help` stays light
    from plait.base.paths import dashboard_users_path
    from plait.ui.users import UsersFile

    return UsersFile(users_file or dashboard_users_path())


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@main.group()
def users() -> None:
    """Manage who may log in to the dashboard (`plait ui` off loopback, or `--login users`)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "editor", "admin"]), default="viewer", show_default=True,
              help="viewer reads; editor also edits notes, metadata and aliases; admin also moves protected aliases.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin instead of asking.")
@_FILE
@pass_ctx
def add(ctx: Context, name: str, role: str, password_stdin: bool, users_file: str | None) -> None:
    """Add a user (or set the password and role of one; their sessions end)."""
    found = _open(users_file)
    user = found.add(name, role, _password(password_stdin))
    ctx.emit({"name": user.name, "role": user.role, "file": str(found.path)}, f"{user.name} ({user.role}) in {found.path}")


@users.command("list")
@_FILE
@pass_ctx
def list_users(ctx: Context, users_file: str | None) -> None:
    """List the users and their roles."""
    found = _open(users_file)
    rows = [{"name": u.name, "role": u.role, "created_at": u.created_at} for u in found.users()]
    ctx.emit(rows, table([[r["name"], r["role"], r["created_at"]] for r in rows], ["NAME", "ROLE", "ADDED"]) if rows
             else f"no users in {found.path} (add one with `plait users add NAME --role admin`)")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["viewer", "editor", "admin"]))
@_FILE
@pass_ctx
def set_role(ctx: Context, name: str, role: str, users_file: str | None) -> None:
    """Change a user's role (it applies to their next request)."""
    user = _open(users_file).set_role(name, role)
    ctx.emit({"name": user.name, "role": user.role}, f"{user.name} is now {user.role}")


@users.command("remove")
@click.argument("name")
@_FILE
@pass_ctx
def remove(ctx: Context, name: str, users_file: str | None) -> None:
    """Remove a user and their API tokens; their sessions end at their next request."""
    _open(users_file).remove(name)
    ctx.emit({"removed": name}, f"removed {name}")


@users.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (shown in `plait users tokens`).")
@_FILE
@pass_ctx
def token(ctx: Context, name: str, label: str, users_file: str | None) -> None:
    """Create an API token for NAME and print it (once: only its hash is kept)."""
    secret = _open(users_file).new_token(name, label)
    ctx.emit({"user": name, "token": secret}, f"{secret}\n(send it as `Authorization: Bearer {secret[:14]}…`; it is not shown again)")


@users.command("tokens")
@_FILE
@pass_ctx
def tokens(ctx: Context, users_file: str | None) -> None:
    """List API tokens (ids, users, labels; never the secrets)."""
    rows = _open(users_file).tokens()
    ctx.emit(rows, table([[t["id"], t["user"], t["label"], t["created_at"]] for t in rows], ["ID", "USER", "LABEL", "CREATED"])
             if rows else "no tokens")


@users.command("revoke")
@click.argument("token_id")
@_FILE
@pass_ctx
def revoke(ctx: Context, token_id: str, users_file: str | None) -> None:
    """Delete an API token by its id (see `plait users tokens`)."""
    _open(users_file).revoke(token_id)
    ctx.emit({"revoked": token_id}, f"revoked {token_id}")
