"""Checking stored bytes: re-hash blobs and name the files whose bytes are missing or damaged."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from plait.errors import CorruptRecordError
from plait.formats.manifest import Manifest
from plait.formats.tree import FILE, FOLDER, NODE_KINDS, REFERENCE, Node
from plait.formats.treeview import TreeManifest, item_blobs

if TYPE_CHECKING:
    from plait.store.base import BaseStore


def damaged_blobs(store: BaseStore, sizes: Mapping[str, int | Iterable[int]]) -> set[str]:
    """Return the blobs that are missing, do not hash to their name, or are not the size a
    manifest says (each read once).

    :param sizes: ``{digest: size}``, or ``{digest: sizes}`` when several entries name one blob.
    """
    actual = store.blobs.checked_sizes(sizes)
    if actual == sizes:  # every blob read back, of the one size claimed (one comparison, in C)
        return set()
    bad = set()
    for digest, found in actual.items():
        claimed = sizes[digest]
        claims = {claimed} if isinstance(claimed, int) else set(claimed)
        if found is None or claims != {found}:
            bad.add(digest)
    return bad


def damaged_paths(store: BaseStore, manifest: Manifest | TreeManifest) -> list[str]:
    """Return the entry paths of ``manifest`` whose blobs are missing, damaged or of the wrong size
    (for a tree, also the folders whose node is), sorted."""
    if isinstance(manifest, TreeManifest):
        return sorted({path for path, _, _ in tree_problems(store, manifest.digest)[0]})
    claims: dict[str, set[int]] = {}
    for entry in manifest.entries:
        for digest, size in entry.blobs:
            claims.setdefault(digest, set()).add(size)
    bad = damaged_blobs(store, claims)
    return sorted(e.path for e in manifest.entries if any(d in bad for d, _ in e.blobs))


#: Blobs checked in one batch while walking a tree (bounds memory whatever the file count).
CHECK_BATCH = 20_000
#: What a problem with a file's blob is called.
BLOB_PROBLEM = "missing or damaged blob, or not the size the manifest says"

#: One problem below a node: ``(path relative to the node's folder, digest, message)``.
Problem = tuple[str, str, str]
#: A reference below a node: ``(path relative to the node's folder, node, index)``.
RefItem = tuple[str, Node, int]
#: What checking a subtree found: its problems and its references.
Found = tuple[list[Problem], list[RefItem]]


def tree_problems(store: BaseStore, root: str, memo: dict[str, Found] | None = None,
                  counted: list[int] | None = None) -> Found:
    """Check every node and blob of a tree, streaming; return its problems sorted by path, and
    its references (to check at their sources).

    A subtree already checked (its digest in ``memo``, shared across the versions of one
    verify) is not walked again: its problems are reported under each version that needs it.
    A node that is missing or damaged is one problem at its folder's path; the rest is checked.

    :param root: the root node's digest.
    :param memo: what was found below each node digest checked so far (filled in).
    :param counted: ``[blobs checked]``, added to.
    """
    memo = {} if memo is None else memo
    pending: list[Node] = []
    batch: dict[str, Any] = {}
    bad: set[str] = set()

    def flush() -> None:
        if batch:
            bad.update(damaged_blobs(store, batch))
            if counted is not None:
                counted[0] += len(batch)
            batch.clear()
        for node in pending:
            memo[node.digest] = _node_problems(node, memo, bad)
        pending.clear()

    for digest, node, error in _post_order(store, root, memo):
        if node is None:
            memo[digest] = ([("", digest, error)], [])
            continue
        pending.append(node)
        _claim(node, batch)
        if len(batch) >= CHECK_BATCH:
            flush()
    flush()
    problems, refs = memo[root]
    return sorted(problems), refs


def _claim(node: Node, batch: dict[str, Any]) -> None:
    """Add the blobs of a node's files to ``batch`` as ``{digest: size}`` (a set of sizes where
    entries disagree): one dict call per file, no set per blob."""
    kinds = node.kinds
    if kinds.count(FILE) == len(kinds):  # the usual node: files only
        pairs: Iterable[tuple[str, int]] = zip(node.digests, node.sizes)
        claims = dict(pairs)
        if len(claims) == len(kinds) and batch.keys().isdisjoint(claims):  # no blob named twice: one update, in C
            batch.update(claims)
            return
        pairs = zip(node.digests, node.sizes)
    else:
        pairs = (pair for i in range(len(node)) if kinds[i] not in NODE_KINDS for pair in item_blobs(node, i))
    for digest, size in pairs:
        claimed = batch.setdefault(digest, size)
        if claimed != size and not (isinstance(claimed, set) and size in claimed):
            batch[digest] = (claimed if isinstance(claimed, set) else {claimed}) | {size}


def _post_order(store: BaseStore, root: str, memo: dict[str, Found]) -> Iterator[tuple[str, Node | None, str]]:
    """Yield ``(digest, node or None, error)`` for every node below ``root`` not in ``memo``,
    children before parents, each once."""
    if root in memo:
        return
    started = {root}
    stack: list[list[Any]] = [[root, None, None]]
    while stack:
        top = stack[-1]
        if top[1] is None:
            try:
                top[1] = store.node(top[0])
            except CorruptRecordError as exc:
                stack.pop()
                yield top[0], None, str(exc)
                continue
            kinds = top[1].kinds
            # the entries pointing at nodes (none in a node of files: no look at each entry)
            top[2] = iter(() if kinds.count(FILE) == len(kinds) else [i for i, k in enumerate(kinds) if k in NODE_KINDS])
        node: Node = top[1]
        for i in top[2]:
            child = node.digests[i]
            if child not in memo and child not in started:
                started.add(child)
                stack.append([child, None, None])
                break
        else:
            stack.pop()
            yield top[0], node, ""


def _node_problems(node: Node, memo: dict[str, Found], bad: set[str]) -> Found:
    found: list[Problem] = []
    refs: list[RefItem] = []
    kinds = node.kinds
    if kinds.count(FILE) == len(kinds):  # files only: look at those named bad, if any
        if bad.isdisjoint(node.digests):
            return found, refs
        return [(node.names[i], d, BLOB_PROBLEM) for i, d in enumerate(node.digests) if d in bad], refs
    for i in range(len(node)):
        kind, name = node.kinds[i], node.names[i]
        if kind in NODE_KINDS:
            below, below_refs = memo[node.digests[i]]
            if kind == FOLDER:
                found += [(f"{name}/{rel}" if rel else name, d, m) for rel, d, m in below]
                refs += [(f"{name}/{rel}", n, j) for rel, n, j in below_refs]
            else:
                found += below
                refs += below_refs
        elif kind == REFERENCE:
            refs.append((name, node, i))
        else:
            found += [(name, d, BLOB_PROBLEM) for d, _ in item_blobs(node, i) if d in bad]
    return found, refs
