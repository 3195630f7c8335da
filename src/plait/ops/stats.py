"""stats: how many bytes were logged, and how many that took in the store, per name and in all.

"Logged" adds up the size of every live version, as if each were a full copy; "stored" counts
each blob once (what deduplication of files and chunks leaves); "referenced" is data that stays
in its own bucket (references), stored nowhere here. The store's total also says what its blobs
take on storage, which is more than what live versions need until ``plait gc`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plait.index import versions as V
from plait.store.base import BaseStore as Store


@dataclass
class NameStats:
    """The numbers of one artifact name (live versions only).

    :ivar name: the artifact name.
    :ivar versions: how many live versions.
    :ivar logged: bytes of all of them added up.
    :ivar stored: bytes of the distinct blobs they need.
    :ivar referenced: bytes of references (data left where it is).
    """

    name: str
    versions: int = 0
    logged: int = 0
    stored: int = 0
    referenced: int = 0


@dataclass
class StatsReport:
    """The numbers of a store.

    :ivar names: per name, sorted by name.
    :ivar logged: bytes of every live version added up.
    :ivar stored: bytes of the distinct blobs live versions need (shared blobs counted once).
    :ivar referenced: bytes of references.
    :ivar on_storage: bytes the store's blobs take, loose or in packs (with the tree nodes packed beside them), garbage
        included; ``None`` when not asked.
    """

    names: list[NameStats] = field(default_factory=list)
    logged: int = 0
    stored: int = 0
    referenced: int = 0
    on_storage: int | None = None

    @property
    def saved(self) -> float:
        """How many times smaller stored is than logged (1.0: no saving)."""
        return self.logged / self.stored if self.stored else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {"logged": self.logged, "stored": self.stored, "referenced": self.referenced, "on_storage": self.on_storage,
                "names": [n.__dict__ for n in self.names]}


def stats(store: Store, name: str | None = None, *, storage: bool = True) -> StatsReport:
    """Count the bytes logged and stored, per name (or for one name) and for the store.

    Reads the manifest of every live version (once per distinct manifest).

    :param name: only this artifact.
    :param storage: also list the store's blobs to say what they take (one listing).
    """
    report = StatsReport()
    every: dict[str, int] = {}
    every_ref: dict[str, int] = {}
    names = [name] if name is not None else V.names(store.catalog)
    for each in names:
        rows = V.live(store.catalog, each)
        if not rows:
            continue
        entry, blobs, refs = NameStats(each, versions=len(rows)), {}, {}
        for digest in dict.fromkeys(r.digest for r in rows):
            for e in store.manifest(digest).entries:
                if e.ref is not None:
                    refs[e.digest] = e.size  # a reference's digest is its identity: counted once
                blobs.update(e.blobs)
        entry.logged = sum(r.size for r in rows)
        entry.stored, entry.referenced = sum(blobs.values()), sum(refs.values())
        every.update(blobs)
        every_ref.update(refs)
        report.names.append(entry)
    report.logged = sum(n.logged for n in report.names)
    report.referenced = sum(every_ref.values())
    report.stored = sum(every.values())
    if storage and name is None and store.exists:
        # format 1 keeps blobs loose; format 2 packs them with the versions' tree nodes (a migrated store has both)
        report.on_storage = sum(sum(store.backend.find(folder).values()) for folder in ("blobs", "packs"))
    return report
