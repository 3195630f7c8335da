"""The dashboard's writes and its login: notes, metadata keys, tags, aliases; session, login, logout.

Every change needs the role it takes (an editor; an admin for a protected alias, the store
setting ``aliases.protected``: an admin's change is recorded as a protected one), is checked
before anything is written, and is recorded as an event carrying the logged-in user
(:func:`plait.store.base.acting_as`), so it shows in the history with who made it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from plait.errors import InvalidMetadataError
from plait.formats.names import MAX_TAGS, check_alias, check_name
from plait.store.base import acting_as
from plait.store.labels import change_tags
from plait.ui import queries
from plait.ui.api import version_dict
from plait.ui.auth import COOKIE, Identity, require
from plait.ui.common import store_of, version_of
from plait.ui.notes import check_note

router = APIRouter(prefix="/api")

#: The most keys one metadata edit changes, and the most bytes its values take as JSON.
MAX_META_KEYS, MAX_META_BYTES = 100, 256 << 10
MAX_KEY_CHARS = 128


class NoteIn(BaseModel):
    """A new description for a version."""

    description: str = Field(description="Markdown text; rendered sanitised in the page.")


class MetadataIn(BaseModel):
    """Metadata keys to set (any JSON value) and keys to remove."""

    set: dict[str, Any] = Field(default_factory=dict, description="keys to set, with JSON values")
    remove: list[str] = Field(default_factory=list, description="keys to remove")


class TagsIn(BaseModel):
    """Tags to put on a version and tags to take off it (one event for them all)."""

    add: list[str] = Field(default_factory=list, max_length=MAX_TAGS, description="tags to put on")
    remove: list[str] = Field(default_factory=list, max_length=MAX_TAGS, description="tags to take off")


class AliasIn(BaseModel):
    """Point an alias at a version of the artifact (adding it, or moving it from another version)."""

    alias: str = Field(max_length=128)
    number: int = Field(ge=0, description="the version number it should point at")


class LoginIn(BaseModel):
    """A user name and password."""

    name: str = Field(max_length=128)
    password: str = Field(max_length=1024)


def identity_of(request: Request) -> Identity | None:
    """Return who the request comes from (set by the app's guard)."""
    return getattr(request.state, "identity", None)


def _editor(request: Request, what: str) -> Identity:
    return require(identity_of(request), "editor", what, allow_edit_hint=True)


# -- session --------------------------------------------------------------------------------------


def _session(request: Request, identity: Identity | None) -> dict[str, Any]:
    auth = request.app.state.auth
    return {"auth": auth.mode, "user": identity.name if identity else None, "role": identity.role if identity else None,
            "via": identity.via if identity else None, "csrf": identity.csrf if identity else None,
            "can_edit": bool(identity and identity.role in ("editor", "admin")), "is_admin": bool(identity and identity.role == "admin")}


@router.get("/session", summary="Who is logged in")
def session(request: Request) -> dict[str, Any]:
    """Return the login mode, the user and role (``null`` when nobody is logged in) and the CSRF token writes must send."""
    return _session(request, identity_of(request))


@router.post("/login", summary="Log in")
def login(request: Request, body: LoginIn) -> JSONResponse:
    """Check a user name and password and start a session (an HttpOnly, SameSite=Strict cookie).

    Failed logins are limited per address and per name (429 with ``Retry-After``).
    """
    auth = request.app.state.auth
    identity, cookie = auth.login(body.name, body.password, request.client.host if request.client else None)
    response = JSONResponse(_session(request, identity))
    secure = auth.secure_cookies if auth.secure_cookies is not None else request.url.scheme == "https"
    response.set_cookie(COOKIE, cookie, max_age=auth.session_seconds, httponly=True, samesite="strict", secure=secure, path="/")
    return response


@router.post("/logout", summary="Log out")
def logout(request: Request) -> JSONResponse:
    """End the session: the cookie is cleared."""
    response = JSONResponse({"auth": request.app.state.auth.mode, "user": None})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# -- edits ----------------------------------------------------------------------------------------


@router.put("/versions/{name}/{number}/description", summary="Edit a version's notes")
def edit_description(request: Request, name: str, number: int, body: NoteIn) -> dict[str, Any]:
    """Set the version's description (Markdown); recorded as an event with its author (editors)."""
    who = _editor(request, "change notes")
    version = version_of(request, name, number)
    with acting_as(who.name):
        return version_dict(version.update(description=check_note(body.description)))


def _check_metadata(body: MetadataIn) -> None:
    keys = list(body.set) + body.remove
    if not keys or len(keys) > MAX_META_KEYS:
        raise InvalidMetadataError(f"change 1 to {MAX_META_KEYS} metadata keys at a time")
    for key in keys:
        if not key.strip() or len(key) > MAX_KEY_CHARS or "\x00" in key:
            raise InvalidMetadataError(f"a metadata key is 1 to {MAX_KEY_CHARS} characters with no NUL; {key[:40]!r} is not")
    try:
        size = len(json.dumps(body.set, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidMetadataError(f"metadata values must be JSON text in UTF-8: {exc}") from None
    if size > MAX_META_BYTES:
        raise InvalidMetadataError(f"these metadata values take {size} bytes; one edit may take {MAX_META_BYTES}")


@router.patch("/versions/{name}/{number}/metadata", summary="Edit a version's metadata keys")
def edit_metadata(request: Request, name: str, number: int, body: MetadataIn) -> dict[str, Any]:
    """Set and remove metadata keys (editors); one event records the old and new metadata."""
    who = _editor(request, "change metadata")
    _check_metadata(body)
    version = version_of(request, name, number)
    merged = {k: v for k, v in {**version.metadata, **body.set}.items() if k not in body.remove}
    with acting_as(who.name):
        return version_dict(version.update(metadata=merged, replace=True))


@router.patch("/versions/{name}/{number}/tags", summary="Add and remove a version's tags")
def edit_tags(request: Request, name: str, number: int, body: TagsIn) -> dict[str, Any]:
    """Put tags on and take tags off the version (editors); one ``tags.changed`` event records both,
    with its author. Removing a tag the version does not carry changes nothing (404)."""
    who = _editor(request, "change tags")
    version = version_of(request, name, number)
    with acting_as(who.name):
        change_tags(version.store, version.name, version.number, add=body.add, remove=body.remove)
    return version_dict(version.refresh())


@router.post("/artifacts/{name}/aliases", summary="Set or move an alias")
def set_alias(request: Request, name: str, body: AliasIn) -> dict[str, Any]:
    """Point an alias at a version of the artifact, adding it or moving it (editors; a protected alias: admins)."""
    who = _editor(request, "move aliases")
    check_alias(body.alias)
    version = version_of(request, check_name(name), body.number)
    with acting_as(who.name):
        version.set_alias(body.alias, force_protected=who.role == "admin")
    return {"name": name, "aliases": queries.aliases(store_of(request), name)}


@router.delete("/artifacts/{name}/aliases/{alias}", summary="Remove an alias")
def remove_alias(request: Request, name: str, alias: str) -> dict[str, Any]:
    """Remove an alias from the artifact (editors; a protected alias: admins)."""
    who = _editor(request, "remove aliases")
    store = store_of(request)
    check_alias(alias)
    with acting_as(who.name):
        store.remove_alias(f"{check_name(name)}:{alias}", alias, force_protected=who.role == "admin")
    return {"name": name, "aliases": queries.aliases(store, name)}
