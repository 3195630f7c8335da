"""The user's own settings: what only the person running plait decides, never a store.

A store is written by everyone with access to its bucket, so nothing in it may widen what plait
does on this machine. What may — which stores' files may be unpickled when loaded — lives in a
TOML file of the user's (see :func:`plait.base.paths.user_config_path`)::

    [load]
    # stores whose model files plait.load may unpickle (only stores whose every writer you trust)
    trusted = ["s3://team/plait", "/home/ada/project/.plait"]

A missing file is no settings; a malformed one is one error naming the file and the line.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from plait.base.paths import user_config_path
from plait.errors import InvalidInputError


def user_settings(path: Path | None = None) -> dict[str, Any]:
    """Return the user's settings (empty when there is no settings file).

    :param path: the file to read (default: :func:`~plait.base.paths.user_config_path`).
    :raises InvalidInputError: if the file is not valid TOML (naming the file and the line).
    """
    path = user_config_path() if path is None else path
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"the settings file {path} is not valid TOML: {exc}; fix or remove it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"the settings file {path} cannot be read ({exc}); fix or remove it") from None


def trusts_store(url: str, settings: dict[str, Any] | None = None) -> bool:
    """Tell whether the user lists the store at ``url`` under ``[load] trusted``.

    :param url: the store URL (a local path is compared once resolved).
    :param settings: the user's settings (default: read them).
    :raises InvalidInputError: if ``[load] trusted`` is not a list of store URLs.
    """
    settings = user_settings() if settings is None else settings
    trusted = (settings.get("load") or {}).get("trusted", [])
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        raise InvalidInputError(f"[load] trusted in {user_config_path()} must be a list of store URLs, like "
                                '["s3://team/plait"]')
    return _normal(url) in {_normal(t) for t in trusted}


def _normal(url: str) -> str:
    if "://" in url and not url.startswith("file://"):
        return url.rstrip("/")
    return os.path.realpath(os.path.expanduser(url.removeprefix("file://")))
