"""Checking stored bytes: re-hash blobs and name the files whose bytes are missing or damaged."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from plait.base.parallel import parallel_map
from plait.formats.manifest import Manifest

if TYPE_CHECKING:
    from plait.store.base import BaseStore


def damaged_blobs(store: BaseStore, digests: Iterable[str]) -> set[str]:
    """Return the blobs among ``digests`` that are missing or do not hash to their name (each read once)."""
    todo = list(dict.fromkeys(digests))
    healthy = parallel_map(store.blobs.verify, todo, max(2, store.blobs.workers))
    return {d for d, good in zip(todo, healthy) if not good}


def damaged_paths(store: BaseStore, manifest: Manifest) -> list[str]:
    """Return the entry paths of ``manifest`` whose blobs are missing or damaged, sorted."""
    bad = damaged_blobs(store, manifest.blobs())
    return sorted(e.path for e in manifest.entries if any(d in bad for d, _ in e.blobs))
