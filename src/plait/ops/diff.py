"""diff: what changed between two versions, path by path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plait.formats.manifest import Entry
from plait.formats.reference import differences
from plait.tracking import html
from plait.tracking.nodes import ArtifactVersion


@dataclass(frozen=True)
class Diff:
    """The difference between two versions.

    :ivar old: spec of the first version.
    :ivar new: spec of the second version.
    :ivar added: ``(path, size)`` only in ``new``.
    :ivar removed: ``(path, size)`` only in ``old``.
    :ivar modified: ``(path, old size, new size)`` in both with different content.
    :ivar unchanged: how many paths are identical.
    :ivar details: for a modified reference (or a file that became one), what changed, by path.
    """

    old: str
    new: str
    added: list[tuple[str, int]] = field(default_factory=list)
    removed: list[tuple[str, int]] = field(default_factory=list)
    modified: list[tuple[str, int, int]] = field(default_factory=list)
    unchanged: int = 0
    details: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether anything differs."""
        return bool(self.added or self.removed or self.modified)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "old": self.old, "new": self.new, "unchanged": self.unchanged,
            "added": [{"path": p, "size": s} for p, s in self.added],
            "removed": [{"path": p, "size": s} for p, s in self.removed],
            "modified": [{"path": p, "old_size": a, "new_size": b, **({"detail": self.details[p]} if p in self.details else {})}
                         for p, a, b in self.modified],
        }

    def __repr__(self) -> str:
        return (f"<Diff {self.old} -> {self.new}: {len(self.added)} added, {len(self.removed)} removed, "
                f"{len(self.modified)} modified, {self.unchanged} unchanged>")

    def _repr_html_(self) -> str:
        return html.diff_html(self)

    def __str__(self) -> str:
        lines = [f"{self.old} -> {self.new}: {len(self.added)} added, {len(self.removed)} removed, "
                 f"{len(self.modified)} modified, {self.unchanged} unchanged"]
        lines += [f"+ {p} ({s} B)" for p, s in self.added]
        lines += [f"- {p} ({s} B)" for p, s in self.removed]
        lines += [f"M {p} ({a} B -> {b} B)" + (f": {self.details[p]}" if p in self.details else "") for p, a, b in self.modified]
        return "\n".join(lines)


def diff(old: ArtifactVersion, new: ArtifactVersion) -> Diff:
    """Compare the manifests of two versions (of any names)."""
    a = {e.path: e for e in old.files()}
    b = {e.path: e for e in new.files()}
    result = Diff(old.spec, new.spec)
    for path in sorted(a.keys() | b.keys()):
        if path not in b:
            result.removed.append((path, a[path].size))
        elif path not in a:
            result.added.append((path, b[path].size))
        elif a[path] != b[path]:
            result.modified.append((path, a[path].size, b[path].size))
            detail = _detail(a[path], b[path])
            if detail:
                result.details[path] = detail
        else:
            object.__setattr__(result, "unchanged", result.unchanged + 1)
    return result


def _detail(old: Entry, new: Entry) -> str:
    """Say what changed in a reference (or that a file became one, or stopped being one)."""
    if old.ref is not None and new.ref is not None:
        return "; ".join(differences(old.ref, old.size, new.ref, new.size))
    if new.ref is not None:
        return f"now a reference to {new.ref.uri}"
    if old.ref is not None:
        return f"now stored (was a reference to {old.ref.uri})"
    return ""
