"""The plugin manager: loads plugins once, lazily, and calls hooks safely.

Plugins come from the entry-point group ``plait`` (the Prefect, Lightning and Hugging Face
integrations register there like any third party) plus the built-in conversions, which are
registered last-called (``trylast``). Set ``PLAIT_DISABLE_PLUGIN_AUTOLOAD=1`` to load no entry
points, and ``PLAIT_TRACE_PLUGINS=1`` to print every hook call to stderr.

Runs reach the hooks through :class:`PluginRelay`, installed by :func:`install` (opening a
:class:`plait.Store` does it): each hook is called by name on pluggy's relay
(``pm.hook.plait_run_started(run=...)``), so a type checker follows every call.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import threading
import warnings
from typing import Any

import pluggy

from plait import builtin, hookspecs, webhooks
from plait.base.paths import user_cache_dir
from plait.errors import PluginWarning
from plait.formats import records as R
from plait.formats.artifact import Artifact
from plait.storage.digest import hash_bytes
from plait.store.base import BaseStore
from plait.store.lifecycle import ChangeRelay, install_change_relay
from plait.tracking.nodes import ArtifactVersion, HistoryEntry
from plait.tracking.run import HookRelay, Run, install_hook_relay

ENTRY_POINT_GROUP = "plait"
DISABLE_AUTOLOAD_ENV = "PLAIT_DISABLE_PLUGIN_AUTOLOAD"
TRACE_ENV = "PLAIT_TRACE_PLUGINS"

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process's plugin manager, loading plugins on first call."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = _build()
        return _manager


def _build() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("plait")
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name="plait.builtin")
    pm.register(webhooks, name="plait.webhooks")
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
    for name, value in entry_points():
        if pm.get_plugin(name) is not None or pm.is_blocked(name):
            continue
        try:
            plugin = _load(value)
        except Exception as exc:  # a broken plugin must not break plait
            warnings.warn(
                f"the plait plugin {name!r} ({value}) failed to load and is skipped: "
                f"{type(exc).__name__}: {exc}; reinstall or upgrade it, or set {DISABLE_AUTOLOAD_ENV}=1",
                PluginWarning, stacklevel=2,
            )
            continue
        pm.register(plugin, name=name)


def entry_points() -> list[tuple[str, str]]:
    """Return ``(name, value)`` of every entry point of the ``plait`` group, by name.

    Finding them reads every installed distribution's metadata (about 50 ms with a few hundred
    installed, on top of importing :mod:`importlib.metadata`), which every ``plait`` command would
    pay. So the list is kept in the user's cache folder with the modification time of each
    folder on ``sys.path``: installing, upgrading or removing a distribution adds or removes a
    folder in one of them, which changes its time, and the list is read again.
    """
    key = [[entry, _mtime(entry or os.getcwd())] for entry in sys.path]
    # named without the script's folder (sys.path[0]), so that `python -m` run in many folders
    # keeps one file; the key still holds it
    cache = user_cache_dir() / f"entry-points-{hash_bytes(repr(sys.path[1:]).encode())[:16]}.json"
    try:
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if kept["key"] == key:
            return [(str(name), str(value)) for name, value in kept["plait"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from importlib import metadata

    found = sorted(((ep.name, ep.value) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)), key=lambda e: e[0])
    try:  # a folder that cannot be written only costs the next command the same scan
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_text(json.dumps({"key": key, "plait": found}), encoding="utf-8")
        os.replace(partial, cache)
    except OSError:
        pass
    return found


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


#: ``module``, ``module:attr`` or ``module:attr.sub``, optionally followed by ``[extras]``.
_ENTRY_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(\[.*\]\s*)?$")


def _load(value: str) -> Any:
    """Import what an entry point's value names (as ``EntryPoint.load`` does)."""
    match = _ENTRY_VALUE.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a module or module:attribute")
    obj: Any = importlib.import_module(match["module"])
    for part in (match["attr"] or "").split(".") if match["attr"] else ():
        obj = getattr(obj, part)
    return obj


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


def _warn(hook: str, exc: Exception) -> None:
    warnings.warn(f"a plait plugin failed in {hook}: {type(exc).__name__}: {exc}", PluginWarning, stacklevel=4)


class PluginRelay(HookRelay):
    """Tells the plugins what runs do and asks them to convert objects; a raising notification
    hook becomes a :class:`~plait.errors.PluginWarning`, never the user's error."""

    def run_started(self, run: Run) -> None:
        """Call ``plait_run_started``."""
        try:
            get_plugin_manager().hook.plait_run_started(run=run)
        except Exception as exc:  # a plugin must never break the user's run
            _warn("plait_run_started", exc)

    def run_finished(self, run: Run, error: BaseException | None) -> None:
        """Call ``plait_run_finished``."""
        try:
            get_plugin_manager().hook.plait_run_finished(run=run, error=error)
        except Exception as exc:  # a plugin must never break the user's run
            _warn("plait_run_finished", exc)

    def artifact_used(self, run: Run, version: ArtifactVersion) -> None:
        """Call ``plait_artifact_used``."""
        try:
            get_plugin_manager().hook.plait_artifact_used(run=run, version=version)
        except Exception as exc:  # a plugin must never break the user's run
            _warn("plait_artifact_used", exc)

    def artifact_logged(self, run: Run, version: ArtifactVersion, created: bool) -> None:
        """Call ``plait_artifact_logged``."""
        try:
            get_plugin_manager().hook.plait_artifact_logged(run=run, version=version, created=created)
        except Exception as exc:  # a plugin must never break the user's run
            _warn("plait_artifact_logged", exc)

    def object_to_artifact(self, obj: Any, name: str | None, type: str | None, store: BaseStore) -> Artifact | None:
        """Call ``plait_object_to_artifact`` (first result wins)."""
        result: Artifact | None = get_plugin_manager().hook.plait_object_to_artifact(obj=obj, name=name, type=type, store=store)
        return result

    def fingerprint(self, obj: Any) -> str | None:
        """Call ``plait_fingerprint`` (first result wins)."""
        result: str | None = get_plugin_manager().hook.plait_fingerprint(obj=obj)
        return result


class LifecycleRelay(ChangeRelay):
    """Calls the lifecycle hooks for each alias move, tag change, edit and deletion a process
    makes; a raising hook becomes a :class:`~plait.errors.PluginWarning`, never the user's error."""

    def changed(self, store: object, event: R.Event) -> None:
        """Call the lifecycle hook of ``event``'s kind, if any plugin implements it."""
        assert isinstance(store, BaseStore)
        hook_name = _LIFECYCLE_HOOKS[event.kind]
        hook = getattr(get_plugin_manager().hook, hook_name)
        if not hook.get_hookimpls():
            return  # nobody listens: build nothing
        try:
            hook(**_lifecycle_arguments(store, event))
        except Exception as exc:  # a plugin must never break the user's command
            _warn(hook_name, exc)


_LIFECYCLE_HOOKS = {
    R.ALIAS_SET: "plait_alias_moved", R.ALIAS_REMOVED: "plait_alias_moved", R.TAGS_CHANGED: "plait_tags_changed",
    R.VERSION_UPDATED: "plait_version_updated", R.VERSION_DELETED: "plait_version_deleted",
}


def _lifecycle_arguments(store: BaseStore, event: R.Event) -> dict[str, Any]:
    """Return the keyword arguments of the lifecycle hook for ``event``."""
    d, change = event.data, HistoryEntry.of_event(event)
    version = ArtifactVersion.at(store, d["name"], d["number"])
    if event.kind in (R.ALIAS_SET, R.ALIAS_REMOVED):
        before = d["number"] if event.kind == R.ALIAS_REMOVED else d.get("old")
        previous = ArtifactVersion.at(store, d["name"], before) if isinstance(before, int) else None
        now = version if event.kind == R.ALIAS_SET else None
        return {"store": store, "name": d["name"], "alias": d["alias"], "version": now, "previous": previous, "change": change}
    if event.kind == R.TAGS_CHANGED:
        return {"version": version, "added": list(d["added"]), "removed": list(d["removed"]), "change": change}
    if event.kind == R.VERSION_UPDATED:
        return {"version": version, "old": dict(d.get("old", {})), "new": dict(d["new"]), "change": change}
    return {"version": version, "change": change}


_relay = PluginRelay()
_lifecycle = LifecycleRelay()


def install() -> None:
    """Make every run and every store talk to the plugins (idempotent and cheap: plugins still load on first use)."""
    install_hook_relay(_relay)
    install_change_relay(_lifecycle)


def artifact_to_object(version: ArtifactVersion, as_type: Any, trusted: bool = False) -> Any:
    """Call ``plait_artifact_to_object`` (first result wins); ``None`` if no plugin makes that type."""
    return get_plugin_manager().hook.plait_artifact_to_object(version=version, as_type=as_type, trusted=trusted)


def plugin_list() -> list[tuple[str, str]]:
    """Return ``(name, where)`` for every registered plugin, for ``plait plugins``."""
    pm = get_plugin_manager()
    out = []
    for name, plugin in pm.list_name_plugin():
        where = getattr(plugin, "__file__", None) or type(plugin).__module__
        out.append((name or "?", str(where)))
    return sorted(out)
