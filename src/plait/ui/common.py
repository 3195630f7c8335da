"""What every part of the dashboard's API shares: the store it serves and how a URL names a version."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from plait.errors import InvalidInputError

if TYPE_CHECKING:
    import plait


def store_of(request: Request) -> plait.Store:
    """Return the store the dashboard serves."""
    return request.app.state.store


def version_of(request: Request, name: str, number: int) -> plait.ArtifactVersion:
    """Return ``name:v<number>`` of the served store.

    :raises InvalidInputError: for a negative number.
    :raises NotFoundError: for a version that does not exist.
    """
    if number < 0:
        raise InvalidInputError(f"a version number is 0 or more, not {number}")
    return store_of(request).get(f"{name}:v{number}")
