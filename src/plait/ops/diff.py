"""diff: what changed between two versions: files path by path, description and metadata, and for
datasets the row counts, when they cost nothing to know.

Row counts come from what is recorded already: a Hugging Face dataset's summary in its metadata
(``huggingface.num_rows``, or per split), and a Parquet file's footer when its bytes are on this
machine (a local store, or the cache); no file is downloaded to count rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plait.formats.manifest import Entry
from plait.formats.reference import differences
from plait.formats.tree import FOLDER, SHARD, Node
from plait.formats.treeview import TreeManifest, entry_of
from plait.tracking.nodes import ArtifactVersion

#: Parquet footers read to count rows, at most (each a small read of a local file).
MAX_PARQUET_FILES = 1000


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
    :ivar metadata: metadata keys that differ: ``{"old": …}`` and/or ``{"new": …}`` (a side
        without the key has none).
    :ivar description: ``(old, new)`` if the description differs.
    :ivar rows: row counts ``(old, new)`` (``None``: not known cheaply) by split (``""``: the
        whole dataset) or Parquet file; only those known on at least one side.
    """

    old: str
    new: str
    added: list[tuple[str, int]] = field(default_factory=list)
    removed: list[tuple[str, int]] = field(default_factory=list)
    modified: list[tuple[str, int, int]] = field(default_factory=list)
    unchanged: int = 0
    details: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: tuple[str, str] | None = None
    rows: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)

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
            "metadata": self.metadata,
            "description": {"old": self.description[0], "new": self.description[1]} if self.description else None,
            "rows": {k: {"old": a, "new": b} for k, (a, b) in self.rows.items()},
        }

    def __repr__(self) -> str:
        return (f"<Diff {self.old} -> {self.new}: {len(self.added)} added, {len(self.removed)} removed, "
                f"{len(self.modified)} modified, {self.unchanged} unchanged>")

    def _repr_html_(self) -> str:
        from plait.tracking import html  # here: notebooks need it, commands do not

        return html.diff_html(self)

    def __str__(self) -> str:
        lines = [f"{self.old} -> {self.new}: {len(self.added)} added, {len(self.removed)} removed, "
                 f"{len(self.modified)} modified, {self.unchanged} unchanged"]
        lines += [f"+ {p} ({s} B)" for p, s in self.added]
        lines += [f"- {p} ({s} B)" for p, s in self.removed]
        lines += [f"M {p} ({a} B -> {b} B)" + (f": {self.details[p]}" if p in self.details else "") for p, a, b in self.modified]
        if self.description is not None:
            lines.append(f"description: {_short(self.description[0])} -> {_short(self.description[1])}")
        for key, change in self.metadata.items():
            old = json.dumps(change["old"], sort_keys=True) if "old" in change else "(none)"
            new = json.dumps(change["new"], sort_keys=True) if "new" in change else "(none)"
            lines.append(f"metadata {key}: {old} -> {new}")
        for key, (a, b) in self.rows.items():
            lines.append(f"rows{' ' + key if key else ''}: {'?' if a is None else f'{a:,}'} -> {'?' if b is None else f'{b:,}'}"
                         + (f" ({b - a:+,})" if a is not None and b is not None else ""))
        return "\n".join(lines)


def diff(old: ArtifactVersion, new: ArtifactVersion) -> Diff:
    """Compare two versions (of any names): files, description, metadata and cheap row counts.

    Two trees are compared folder by folder: a folder whose node digest is the same in both is
    counted unchanged without being read, so two versions one file apart read the nodes on
    that file's path only.
    """
    result = Diff(old.spec, new.spec)
    a, b = old.manifest, new.manifest
    if isinstance(a, TreeManifest) and isinstance(b, TreeManifest):
        _diff_trees(result, a, b)
        # row counts of the changed files only: the folders of the others are not read
        changed = {p for found in (result.added, result.removed, result.modified) for p, *_ in found}
        files_a = {p: e for p in changed if (e := a.get(p)) is not None}
        files_b = {p: e for p in changed if (e := b.get(p)) is not None}
    else:
        files_a, files_b = {e.path: e for e in a}, {e.path: e for e in b}
        _diff_flat(result, files_a, files_b)
    result.metadata.update(_metadata_changes(old.metadata, new.metadata))
    if old.description != new.description:
        object.__setattr__(result, "description", (old.description, new.description))
    result.rows.update(_row_changes(old, new, files_a, files_b))
    return result


def _diff_flat(result: Diff, a: dict[str, Entry], b: dict[str, Entry]) -> None:
    for path in sorted(a.keys() | b.keys()):
        if path not in b:
            result.removed.append((path, a[path].size))
        elif path not in a:
            result.added.append((path, b[path].size))
        else:
            _compare(result, a[path], b[path])


def _compare(result: Diff, old: Entry, new: Entry) -> None:
    if old != new:
        result.modified.append((old.path, old.size, new.size))
        detail = _detail(old, new)
        if detail:
            result.details[old.path] = detail
    else:
        object.__setattr__(result, "unchanged", result.unchanged + 1)


def _diff_trees(result: Diff, a: TreeManifest, b: TreeManifest) -> None:
    """Merge-join two trees in path order, descending only into folders (and shards of large
    folders) whose digests differ."""
    todo: list[tuple[str, Node, Node]] = [("", a.root, b.root)]
    while todo:
        base, x, y = todo.pop()
        later: list[tuple[str, Node, Node]] = []
        left, right = _Cursor(a, x), _Cursor(b, y)
        while True:
            i, j = left.head(), right.head()
            if i is None and j is None:
                break
            if i is not None and i[0].kinds[i[1]] == SHARD:
                if j is not None and j[0].kinds[j[1]] == SHARD and j[0].names[j[1]] == i[0].names[i[1]] \
                        and j[0].digests[j[1]] == i[0].digests[i[1]]:  # the same shard on both sides
                    object.__setattr__(result, "unchanged", result.unchanged + i[0].counts[i[1]])
                    left.skip()
                    right.skip()
                else:
                    left.expand()
                continue
            if j is not None and j[0].kinds[j[1]] == SHARD:
                right.expand()
                continue
            if j is None or (i is not None and i[0].key(i[1]) < j[0].key(j[1])):
                assert i is not None
                _one_side(result.removed, a, base, i)
                left.skip()
            elif i is None or j[0].key(j[1]) < i[0].key(i[1]):
                _one_side(result.added, b, base, j)
                right.skip()
            else:
                (nx, ix), (ny, iy) = i, j
                if nx.kinds[ix] == FOLDER:
                    if nx.digests[ix] == ny.digests[iy]:
                        object.__setattr__(result, "unchanged", result.unchanged + nx.counts[ix])
                    else:
                        later.append((f"{base}{nx.names[ix]}/", a.child(nx, ix), b.child(ny, iy)))
                else:
                    path = base + nx.names[ix]
                    _compare(result, entry_of(path, nx, ix), entry_of(path, ny, iy))
                left.skip()
                right.skip()
        todo.extend(reversed(later))
    for found in (result.added, result.removed, result.modified):
        found.sort()


class _Cursor:
    """A position in one folder's entries, across its shards; a shard is expanded only on demand."""

    def __init__(self, tree: TreeManifest, node: Node) -> None:
        self.tree = tree
        self.stack: list[list[Any]] = [[node, 0]]

    def head(self) -> tuple[Node, int] | None:
        """Return the entry (or whole shard) at this position, or ``None`` at the end."""
        while self.stack:
            node, i = self.stack[-1]
            if i < len(node):
                return node, i
            self.stack.pop()
        return None

    def skip(self) -> None:
        """Move past the entry or shard at this position."""
        self.stack[-1][1] += 1

    def expand(self) -> None:
        """Replace the shard at this position by its entries."""
        node, i = self.stack[-1]
        self.stack[-1][1] += 1
        self.stack.append([self.tree.child(node, i), 0])


def _one_side(found: list[tuple[str, int]], tree: TreeManifest, base: str, item: tuple[Node, int]) -> None:
    """Add one entry, or every file below a folder, to ``found`` (added or removed)."""
    node, i = item
    path = base + node.names[i]
    if node.kinds[i] != FOLDER:
        found.append((path, node.sizes[i]))
        return
    found.extend((p, n.sizes[k]) for p, n, k in tree.items(path, start=tree.child(node, i)))


def _metadata_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(old.keys() | new.keys()):
        if key in old and key in new and old[key] == new[key]:
            continue
        out[key] = {**({"old": old[key]} if key in old else {}), **({"new": new[key]} if key in new else {})}
    return out


def _row_changes(old: ArtifactVersion, new: ArtifactVersion, a: dict[str, Entry], b: dict[str, Entry]) -> dict[str, tuple[int | None, int | None]]:
    """Row counts of both versions where they are known cheaply, by split or Parquet file."""
    before, after = _hf_rows(old.metadata), _hf_rows(new.metadata)
    if not before and not after:
        before, after = _parquet_rows(old, a), _parquet_rows(new, b)
    return {k: (before.get(k), after.get(k)) for k in sorted(before.keys() | after.keys())
            if before.get(k) != after.get(k) or len(before.keys() | after.keys()) == 1}


def _hf_rows(metadata: Mapping[str, Any]) -> dict[str, int]:
    """Row counts a Hugging Face dataset's summary records: ``{"": n}`` or ``{split: n}``."""
    summary = metadata.get("huggingface")
    if not isinstance(summary, Mapping):
        return {}
    if isinstance(summary.get("num_rows"), int):
        return {"": summary["num_rows"]}
    splits = summary.get("splits")
    if isinstance(splits, Mapping):
        return {str(k): v for k, v in splits.items() if isinstance(v, int)}
    return {}


def _parquet_rows(version: ArtifactVersion, entries: dict[str, Entry]) -> dict[str, int]:
    """Row counts from the footers of a version's Parquet files whose bytes are on this machine."""
    files = [e for p, e in entries.items() if p.endswith(".parquet") and e.ref is None and e.chunks is None][:MAX_PARQUET_FILES]
    if not files or not version.store.backend.is_local:
        return {}
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return {}
    out = {}
    for entry in files:
        try:
            out[entry.path] = pq.read_metadata(version.store.blobs.local_copy(entry.digest)).num_rows
        except Exception:  # noqa: BLE001 - a blob missing, or a file that is not Parquet after all: no count
            continue
    return out


def _short(text: str, width: int = 60) -> str:
    one = " ".join(text.split())
    return json.dumps(one if len(one) <= width else one[: width - 1] + "…")


def _detail(old: Entry, new: Entry) -> str:
    """Say what changed in a reference (or that a file became one, or stopped being one)."""
    if old.ref is not None and new.ref is not None:
        return "; ".join(differences(old.ref, old.size, new.ref, new.size))
    if new.ref is not None:
        return f"now a reference to {new.ref.uri}"
    if old.ref is not None:
        return f"now stored (was a reference to {old.ref.uri})"
    return ""
