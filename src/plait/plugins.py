"""The plugin manager: loads plugins once, lazily, and calls hooks safely.

Plugins come from the entry-point group ``plait`` (the Prefect, Lightning and Hugging Face
integrations register there like any third party) plus the built-in conversions, which are
registered last-called (``trylast``). Set ``PLAIT_DISABLE_PLUGIN_AUTOLOAD=1`` to load no entry
points, and ``PLAIT_TRACE_PLUGINS=1`` to print every hook call to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from typing import Any

import pluggy

from plait import hookspecs

ENTRY_POINT_GROUP = "plait"
DISABLE_AUTOLOAD_ENV = "PLAIT_DISABLE_PLUGIN_AUTOLOAD"
TRACE_ENV = "PLAIT_TRACE_PLUGINS"

hookimpl = pluggy.HookimplMarker("plait")
"""Decorator marking a function as a plait hook implementation (see :mod:`plait.hookspecs`)."""

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


class PluginWarning(UserWarning):
    """Warned when a plugin failed to load or its notification hook raised; the user's work goes on."""


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process's plugin manager, loading plugins on first call."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = _build()
        return _manager


def _build() -> pluggy.PluginManager:
    from plait import builtin

    pm = pluggy.PluginManager("plait")
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name="plait.builtin")
    if not os.environ.get(DISABLE_AUTOLOAD_ENV):
        _load_entry_points(pm)
    pm.check_pending()
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every plugin of the entry-point group; one that fails to import is skipped.

    pluggy's ``load_setuptools_entrypoints`` stops at the first broken plugin, which would make
    every ``run.log`` fail because of one third-party package; a warning names it instead.
    """
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not break plait
            warnings.warn(
                f"the plait plugin {ep.name!r} ({ep.value}) failed to load and is skipped: "
                f"{type(exc).__name__}: {exc}; reinstall or upgrade it, or set {DISABLE_AUTOLOAD_ENV}=1",
                PluginWarning, stacklevel=2,
            )
            continue
        pm.register(plugin, name=ep.name)


def reset_plugin_manager() -> None:
    """Forget the loaded plugins; the next call loads them again (for tests and notebooks)."""
    global _manager
    with _lock:
        _manager = None


def register(plugin: Any, name: str | None = None) -> str | None:
    """Register a plugin object or module with the process's plugin manager; return its name."""
    pm = get_plugin_manager()
    name = pm.register(plugin, name=name)
    pm.check_pending()
    return name


def unregister(plugin: Any = None, name: str | None = None) -> None:
    """Unregister a plugin registered with :func:`register`."""
    get_plugin_manager().unregister(plugin=plugin, name=name)


def notify(hook: str, **kwargs: Any) -> None:
    """Call a notification hook; a plugin that raises becomes a :class:`PluginWarning`."""
    try:
        getattr(get_plugin_manager().hook, hook)(**kwargs)
    except Exception as exc:  # a plugin must never break the user's run
        warnings.warn(f"a plait plugin failed in {hook}: {type(exc).__name__}: {exc}", PluginWarning, stacklevel=3)


def convert(hook: str, **kwargs: Any) -> Any:
    """Call a ``firstresult`` conversion hook and return its result (``None`` if none)."""
    return getattr(get_plugin_manager().hook, hook)(**kwargs)


def plugin_list() -> list[tuple[str, str]]:
    """Return ``(name, where)`` for every registered plugin, for ``plait plugins``."""
    pm = get_plugin_manager()
    out = []
    for name, plugin in pm.list_name_plugin():
        where = getattr(plugin, "__file__", None) or type(plugin).__module__
        out.append((name or "?", str(where)))
    return sorted(out)
