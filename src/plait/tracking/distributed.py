"""Distributed versions from a run's side: send a part, finish the version, credit every sender.

Each worker sends its files with :func:`upsert` (in its own run); one process calls
:func:`finish` once they are all sent. The version that results is logged by the finishing run,
and every run whose part it holds is recorded as one more of its producers, so the lineage of
the version reaches every worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from plait.formats import records as R
from plait.formats.artifact import Artifact
from plait.formats.distributed import check_distributed_id
from plait.formats.names import check_name
from plait.index import producers as P
from plait.store import distributed as S
from plait.store.distributed import DEFAULT_WAIT, Part
from plait.tracking.nodes import ArtifactVersion
from plait.tracking.run import Run, apply_labels, check_labels, hook_relay

__all__ = ["Part", "finish", "upsert"]


def upsert(run: Run, artifact: Artifact, *, wait: float = DEFAULT_WAIT) -> Part:
    """Send a draft with a ``distributed_id`` as one part of that distributed version, from ``run``.

    See :func:`plait.upsert`.
    """
    run = run.current()
    return S.upsert(run.store, artifact, run=run.id, on_hashed=run.start, wait=wait)


def finish(run: Run, name: str, distributed_id: str, *, aliases: Iterable[str] = (), description: str | None = None,
           metadata: Mapping[str, Any] | None = None, tags: Iterable[str] = (),
           ttl: str | float | timedelta | None = None, wait: float = DEFAULT_WAIT) -> ArtifactVersion:
    """Make the one version of a distributed version, logged by ``run``; see :func:`plait.finish`."""
    run = run.current()
    name, distributed_id = check_name(name), check_distributed_id(distributed_id)
    aliases, tags = check_labels(aliases, tags, ttl)
    done = S.finish(run.store, name, distributed_id, run=run.id, description=description, metadata=metadata, wait=wait,
                    on_start=run.start)
    version = ArtifactVersion.from_row(run.store, done.row)
    catalog = run.store.catalog
    credited = set(P.runs_of(catalog, version.name, version.number))
    for sender in done.runs:
        if sender not in credited:
            run.store.write_event(R.VERSION_PRODUCED, {"name": version.name, "number": version.number, "digest": version.digest},
                                  run=sender)
    if not done.created and run.id not in credited:
        run.store.write_event(R.VERSION_PRODUCED, {"name": version.name, "number": version.number, "digest": version.digest},
                              run=run.id)
    version = apply_labels(version.refresh(), aliases, tags, ttl, run=run.id)  # refreshed: a producer may move latest
    hook_relay().artifact_logged(run=run, version=version, created=done.created)
    return version
