"""Checkpoint files as inputs: ``checkpoint_path(spec)`` and linking the ``ckpt_path`` a fit starts from.

Neither function imports torch or Lightning.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import plait
from plait import Artifact, PlaitError

if TYPE_CHECKING:
    from plait import ArtifactVersion, Run, Store

#: The entry name of the checkpoint file inside every checkpoint version. A fixed name makes the
#: manifest digest depend on the bytes only, so a plain ``ckpt_path`` is matched to its version.
CHECKPOINT_ENTRY = "model.ckpt"

# realpath -> (size, mtime_ns, store url, spec) of files checkpoint_path() downloaded.
_downloaded: dict[str, tuple[int, int, str, str]] = {}
_lock = threading.Lock()


def checkpoint_path(spec: str, *, store: Store | str | None = None) -> str:
    """Download a checkpoint version and return the local path of its ``.ckpt`` file.

    The use is recorded on the active run (or the process's implicit run), and the path is
    remembered, so a ``trainer.fit(..., ckpt_path=checkpoint_path("classifier:best"))`` under
    :class:`PlaitCheckpoints` lists that version among the fit's inputs without hashing it again.

    :param spec: a version spec: ``classifier:best``, ``classifier:v3``, ``classifier:latest``.
    :param store: the store (default: the active run's, else the default store).
    :returns: the path of the downloaded, verified checkpoint file.
    :raises NotFoundError: for an unknown spec, listing what exists.
    :raises SourceError: if the version holds no single checkpoint file.
    :raises IntegrityError: if the stored bytes are damaged.
    """
    version = plait.use(spec, store=store)
    entry = checkpoint_entry(version)
    folder = version.download(paths=[entry])
    path = os.path.realpath(os.path.join(folder, *entry.split("/")))
    st = os.stat(path)
    with _lock:
        _downloaded[path] = (st.st_size, st.st_mtime_ns, version.store.url, version.spec)
    return path


def checkpoint_entry(version: ArtifactVersion) -> str:
    """Return the entry path of the checkpoint file of a version.

    :raises SourceError: if the version has no ``.ckpt`` file or several.
    """
    paths = [e.path for e in version.files()]
    if CHECKPOINT_ENTRY in paths:
        return CHECKPOINT_ENTRY
    ckpts = [p for p in paths if p.endswith(".ckpt")]
    if len(ckpts) == 1:
        return ckpts[0]
    if len(paths) == 1:
        return paths[0]
    raise plait.SourceError(
        f"{version.spec} holds {len(paths)} files and {len(ckpts)} .ckpt files; give checkpoint_path() a "
        "version logged by PlaitCheckpoints (one model.ckpt), or download it with plait.get(spec).download()",
        path=version.spec,
    )


def link_checkpoint(run: Run, path: str | os.PathLike[str]) -> ArtifactVersion | None:
    """Record that ``run`` starts from the checkpoint file at ``path``; return its version.

    A file :func:`checkpoint_path` downloaded is linked to the version it came from. Any other
    local file is hashed and linked to a stored version with the same bytes; a checkpoint plait has
    never seen is recorded as a new ``model`` version named after the file (so the lineage keeps it).

    :returns: the version, or ``None`` for a remote URL (not hashed).
    """
    path = os.fspath(path)
    if "://" in path and not path.startswith("file://"):
        return None
    real = os.path.realpath(path.removeprefix("file://"))
    st = os.stat(real)
    with _lock:
        known = _downloaded.get(real)
    if known is not None and known[:3] == (st.st_size, st.st_mtime_ns, run.store.url):
        try:
            return run.use(known[3])
        except PlaitError:  # deleted since: fall back to the bytes
            pass
    name = plait_name(os.path.splitext(os.path.basename(real))[0])
    return run.use(Artifact(name, type="model").add_file(real, name=CHECKPOINT_ENTRY))


def plait_name(text: str) -> str:
    """Turn a file stem like ``epoch=3-step=90`` into a valid artifact name (``epoch-3-step-90``)."""
    return plait.safe_name(text, "checkpoint")
