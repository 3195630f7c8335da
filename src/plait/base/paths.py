"""Where things are: the default store URL, the local cache folder and the user settings file.

The default store is, in order: the explicit argument, ``$PLAIT_STORE``, the nearest ``.plait/``
folder found walking up from the working directory, else ``./.plait`` (created on first write).
Caches (the SQLite index, the stat cache, downloaded blobs) live under ``$PLAIT_CACHE_DIR``,
else ``$XDG_CACHE_HOME/plait``, else ``~/.cache/plait``; a local store keeps its index beside
itself in ``<root>/cache/`` so the folder stays self-contained. The user settings file is
``$PLAIT_CONFIG``, else ``$XDG_CONFIG_HOME/plait/config.toml``, else ``~/.config/plait/config.toml``.
"""

from __future__ import annotations

import os
from pathlib import Path

STORE_ENV = "PLAIT_STORE"
CACHE_ENV = "PLAIT_CACHE_DIR"
CONFIG_ENV = "PLAIT_CONFIG"
DEFAULT_DIRNAME = ".plait"


def default_store_url(start: str | os.PathLike[str] | None = None) -> str:
    """Return the URL of the store to use when none is given.

    :param start: where to start looking for ``.plait/`` (the working directory by default).
    """
    env = os.environ.get(STORE_ENV)
    if env:
        return env
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_DIRNAME
        if candidate.is_dir():
            return str(candidate)
    return str(here / DEFAULT_DIRNAME)


def user_cache_dir() -> Path:
    """Return plait's per-user cache folder (not created here)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "plait"


def user_config_path() -> Path:
    """Return where this user's settings file is (it need not exist)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return Path(xdg or Path.home() / ".config") / "plait" / "config.toml"
