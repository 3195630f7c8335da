"""Where things are: the default store URL, the local cache folder and the user settings file.

The default store is, in order: the explicit argument, ``$PLAIT_STORE``, the nearest ``.plait/``
folder of the current user found walking up from the working directory (one another user owns is
passed over, with a warning), else ``./.plait`` (created on first write).
Caches (the SQLite index, the stat cache, downloaded blobs) live under ``$PLAIT_CACHE_DIR``,
else ``$XDG_CACHE_HOME/plait``, else ``~/.cache/plait``; a local store of the current user keeps
its index beside itself in ``<root>/cache/`` so the folder stays self-contained. The user's own
settings (what only this user decides, never a store) are in ``$PLAIT_CONFIG``, else
``$XDG_CONFIG_HOME/plait/config.toml``, else ``~/.config/plait/config.toml``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from plait.errors import PlaitWarning, StoreError

STORE_ENV = "PLAIT_STORE"
CACHE_ENV = "PLAIT_CACHE_DIR"
CONFIG_ENV = "PLAIT_CONFIG"
DEFAULT_DIRNAME = ".plait"


def default_store_url(start: str | os.PathLike[str] | None = None) -> str:
    """Return the URL of the store to use when none is given.

    :param start: where to start looking for ``.plait/`` (the working directory by default).
    :raises StoreError: if ``./.plait`` itself belongs to another user.
    """
    env = os.environ.get(STORE_ENV)
    if env:
        return env
    here = Path(start or os.getcwd()).resolve()
    if (here / DEFAULT_DIRNAME).is_dir() and _owned_by_someone_else(here / DEFAULT_DIRNAME):
        # the fallback ./.plait is that very folder: there is no store of ours to pick
        raise StoreError(f"{here / DEFAULT_DIRNAME} belongs to another user; pass --store {here / DEFAULT_DIRNAME} "
                         "to use it, or --store URL (or $PLAIT_STORE) for another store")
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_DIRNAME
        if candidate.is_dir():
            if _owned_by_someone_else(candidate):
                # a folder another user made could hold anything: never read or write it unasked
                warnings.warn(f"ignoring {candidate}: it belongs to another user; pass --store {candidate} "
                              "(or set $PLAIT_STORE) to use it", PlaitWarning, stacklevel=2)
                continue
            return str(candidate)
    return str(here / DEFAULT_DIRNAME)


def _owned_by_someone_else(path: Path) -> bool:
    if not hasattr(os, "getuid"):
        return False
    try:
        return path.stat().st_uid != os.getuid()
    except OSError:
        return True


def user_cache_dir() -> Path:
    """Return plait's per-user cache folder (not created here)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "plait"


def user_config_dir() -> Path:
    """Return plait's per-user configuration folder, ``$XDG_CONFIG_HOME/plait`` or ``~/.config/plait`` (not created here)."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return Path(xdg or Path.home() / ".config") / "plait"


def user_config_path() -> Path:
    """Return where this user's settings file is (it need not exist)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return user_config_dir() / "config.toml"


def dashboard_users_path() -> Path:
    """Return the dashboard's users file: ``$PLAIT_USERS``, else ``users.json`` in :func:`user_config_dir`.

    It lives on the server's side, never in a store: anyone who can write a store could
    otherwise make themselves an admin.
    """
    env = os.environ.get("PLAIT_USERS")
    return Path(env).expanduser() if env else user_config_dir() / "users.json"
