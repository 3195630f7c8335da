"""Checking stored bytes: re-hash blobs and name the files whose bytes are missing or damaged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from plait.formats.manifest import Manifest

if TYPE_CHECKING:
    from plait.store.base import BaseStore


def damaged_blobs(store: BaseStore, sizes: Mapping[str, int | Iterable[int]]) -> set[str]:
    """Return the blobs that are missing, do not hash to their name, or are not the size a
    manifest says (each read once).

    :param sizes: ``{digest: size}``, or ``{digest: sizes}`` when several entries name one blob.
    """
    actual = store.blobs.checked_sizes(sizes)
    bad = set()
    for digest, found in actual.items():
        claimed = sizes[digest]
        claims = {claimed} if isinstance(claimed, int) else set(claimed)
        if found is None or claims != {found}:
            bad.add(digest)
    return bad


def damaged_paths(store: BaseStore, manifest: Manifest) -> list[str]:
    """Return the entry paths of ``manifest`` whose blobs are missing, damaged or of the wrong size, sorted."""
    claims: dict[str, set[int]] = {}
    for entry in manifest.entries:
        for digest, size in entry.blobs:
            claims.setdefault(digest, set()).add(size)
    bad = damaged_blobs(store, claims)
    return sorted(e.path for e in manifest.entries if any(d in bad for d, _ in e.blobs))
