"""Every hook plait calls, with when it is called and what a return value means.

Implement hooks in a module or class, decorate them with :data:`plait.hookimpl`, and register
the module under the entry-point group ``plait`` in your package's ``pyproject.toml``::

    [project.entry-points.plait]
    myplugin = "myplugin.plait_hooks"

Hooks are always called with keyword arguments, so an implementation may accept only the
arguments it needs. Notification hooks return nothing; their exceptions are turned into
warnings so a broken plugin never breaks a user's run. Conversion hooks are ``firstresult``:
the first implementation returning something other than ``None`` wins, and the built-in
conversions (paths, bytes, :class:`plait.Artifact`, :class:`plait.ArtifactVersion`) run last.

Where each hook sits in the data flow::

    run.log(obj) -> plait_fingerprint -> plait_object_to_artifact -> store -> plait_artifact_logged
    run.use(obj) -> plait_fingerprint -> plait_object_to_artifact -> match by digest -> plait_artifact_used
    plait.load(spec, as_type) -> plait_artifact_to_object
    with plait.run(): plait_run_started ... plait_run_finished
    an alias set or removed -> plait_alias_moved;  tags -> plait_tags_changed
    a note or metadata edited -> plait_version_updated;  a version deleted -> plait_version_deleted

The four lifecycle hooks are called once, in the process that made the change, right after its
event is in the store, however it was made (the API, the CLI, the dashboard, ``plait gc``
expiring a version); changes that arrive from other writers or by ``sync`` are not announced
again. Each gets ``change``, the :class:`plait.HistoryEntry` of the event (its id, time, user
and run). The built-in webhook plugin (:mod:`plait.webhooks`) implements them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from plait.formats.artifact import Artifact
    from plait.store.base import BaseStore as Store
    from plait.tracking.nodes import ArtifactVersion, HistoryEntry
    from plait.tracking.run import Run

hookspec = pluggy.HookspecMarker("plait")
"""Decorator marking a function as a plait hook specification."""

hookimpl = pluggy.HookimplMarker("plait")
"""Decorator marking a function as a plait hook implementation; plugins use it as ``plait.hookimpl``."""


@hookspec
def plait_run_started(run: Run) -> None:
    """Called when a run starts, after its ``run.started`` event is in the store.

    :param run: the run; ``run.store`` is where it is recorded, ``run.parent`` its parent.
    """


@hookspec
def plait_run_finished(run: Run, error: BaseException | None) -> None:
    """Called when a run ends, after its ``run.finished`` event is in the store.

    :param run: the run; ``run.status`` is ``finished`` or ``failed``.
    :param error: the exception that ended it, or ``None``.
    """


@hookspec
def plait_artifact_used(run: Run, version: ArtifactVersion) -> None:
    """Called after a run recorded that it uses a version.

    :param run: the run that uses it.
    :param version: the version used.
    """


@hookspec
def plait_artifact_logged(run: Run, version: ArtifactVersion, created: bool) -> None:
    """Called after a run logged a version.

    :param run: the run that logged it.
    :param version: the version: new, or an existing live version of the name with the same
        content (the run is then recorded as one more of its producers).
    :param created: ``False`` when the content equalled an existing version and no new one was made.
    """


@hookspec(firstresult=True)
def plait_object_to_artifact(obj: Any, name: str | None, type: str | None, store: Store) -> Artifact | None:
    """Turn a Python object into an :class:`plait.Artifact` draft, or return ``None``.

    Called by ``run.log(obj)`` and ``run.use(obj)`` for anything that is not already a
    version. Stops at the first non-``None`` result; the built-in implementation (paths,
    ``bytes``, drafts) runs last.

    :param obj: the object to log (a path, a dataset, a model, …).
    :param name: the artifact name the caller asked for, or ``None`` (choose one, then).
    :param type: the artifact type the caller asked for, or ``None``.
    :param store: the store it will go to.
    :returns: a draft, or ``None`` if this plugin does not handle ``obj``.
    """


@hookspec(firstresult=True)
def plait_artifact_to_object(version: ArtifactVersion, as_type: Any, trusted: bool) -> Any:
    """Turn a stored version back into a Python object of the requested type, or ``None``.

    Called by :func:`plait.load`. Stops at the first non-``None`` result; the built-in
    implementation returns a local folder path for ``as_type`` ``None``, ``str`` or ``Path``.

    A store is written by everyone who can write its bucket: a plugin must never run code it
    finds there (no unpickling, no ``trust_remote_code``) unless ``trusted`` is set; it loads
    weights only, or refuses with a :class:`plait.ConversionError` saying how to opt in.

    :param version: the version to load (download it with ``version.download()``).
    :param as_type: the type the caller wants (a class, or a string hint), or ``None``.
    :param trusted: the user said this store's every writer is trusted (``plait.load(...,
        trusted=True)``, or the store listed under ``[load] trusted`` in the user's settings).
    :returns: the object, or ``None`` if this plugin cannot make that type.
    """


@hookspec(firstresult=True)
def plait_fingerprint(obj: Any) -> str | None:
    """Return a cheap identity for an object, or ``None``.

    When the same fingerprint was logged before to a store, ``run.log``/``run.use`` reuse that
    version without converting or hashing the object again (e.g. a Hugging Face dataset's
    ``_fingerprint``). It need not be a content hash: two fingerprints may name equal content,
    but one fingerprint must never name two different contents. Stops at the first non-``None``.

    :param obj: the object about to be logged or used.
    :returns: a string unique to the object's content, or ``None``.
    """


@hookspec
def plait_alias_moved(store: Store, name: str, alias: str, version: ArtifactVersion | None,
                      previous: ArtifactVersion | None, change: HistoryEntry) -> None:
    """Called after an alias was set, moved or removed ("when ``model:production`` moves, deploy").

    :param store: the store it happened in.
    :param name: the artifact name.
    :param alias: the alias.
    :param version: the version the alias points at now, or ``None`` if it was removed.
    :param previous: the version it pointed at before, or ``None`` if it was new.
    :param change: the history entry of the ``alias.set`` / ``alias.removed`` event.
    """


@hookspec
def plait_tags_changed(version: ArtifactVersion, added: list[str], removed: list[str], change: HistoryEntry) -> None:
    """Called after tags were put on a version or taken off it (one call per change).

    :param version: the version as it is now (``version.tags``).
    :param added: the tags put on.
    :param removed: the tags taken off.
    :param change: the history entry of the ``tags.changed`` event.
    """


@hookspec
def plait_version_updated(version: ArtifactVersion, old: dict[str, Any], new: dict[str, Any],
                          change: HistoryEntry) -> None:
    """Called after a version's note (its description) or metadata was edited.

    :param version: the version as it is now.
    :param old: the fields that changed, as they were (``description``, ``metadata``).
    :param new: the same fields as they are now.
    :param change: the history entry of the ``version.updated`` event.
    """


@hookspec
def plait_version_deleted(version: ArtifactVersion, change: HistoryEntry) -> None:
    """Called after a version was deleted (by ``plait delete``, or expired by ``plait gc``).

    :param version: the version, now ``version.deleted``; its files stay readable until a gc
        collects them.
    :param change: the history entry of the ``version.deleted`` event (``change.detail["reason"]``
        says why gc expired it).
    """
