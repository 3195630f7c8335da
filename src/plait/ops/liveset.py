"""The blobs live versions need, as positions in the pack index: flat memory at a million files.

gc used to hold the live set as a Python ``set`` of hex digests: about 150 bytes a blob, 645 MiB
at a million files. Here each index file gets one byte per entry (``bytearray``), set where a
live version needs the digest; only digests no index file lists (format-1 loose blobs, or
missing ones) are kept as strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import repeat

from plait.formats.tree import FILE, NODE_KINDS, Node
from plait.formats.treeview import item_blobs
from plait.storage.packindex import WORDS, IndexFile

#: A live version needs the digest at this position (every copy of it is so marked).
LIVE = 1
#: This copy is the one counted live (one per digest: the first a read takes outside condemned packs).
KEPT = 2


class LiveSet:
    """Digests live versions need: a byte per entry of each index file, a set for the rest.

    :param files: the index files to mark in (the store's active ones; none for a loose store).
    :param condemned: packs a ripe gc mark lists: a blob stored there and elsewhere is kept elsewhere.
    """

    def __init__(self, files: Iterable[IndexFile] = (), condemned: Iterable[str] = ()) -> None:
        self.files = list(files)
        self.flags = {f.name: bytearray(f.count) for f in self.files}
        self.loose: set[str] = set()
        self.condemned = condemned = set(condemned)
        self._condemned = {f.name: frozenset(n for n, p in enumerate(f.pack_ids) if p in condemned) for f in self.files}
        self._width = self.files[0].width if self.files else 0

    def add_raw(self, raw: bytes) -> bool:
        """Mark a blob live by its raw digest; return whether it was not already."""
        return bool(self.add_column(raw))

    def add_column(self, raws: bytes) -> int:
        """Mark blobs live by their raw digests (back to back); return how many were not already.

        Looked up file by file, newest first, with :meth:`IndexFile.find_all` (the lookups run in
        C). The copy marked is the first found outside a condemned pack (else the first found);
        :meth:`finish` marks the other copies.
        """
        width = self._width
        todo = list(range(len(raws) // width))
        first: dict[int, tuple[bytearray, int]] = {}  # blobs found only in condemned packs so far
        new = 0
        for index in self.files:
            if not todo:
                break
            column = raws if len(todo) * width == len(raws) else b"".join(raws[k * width : (k + 1) * width] for k in todo)
            flags, condemned, words = self.flags[index.name], self._condemned[index.name], index.words
            found = index.find_all(column)
            if not condemned and not first and -1 not in found and bytes(map(flags.__getitem__, found)).count(0) == len(found):
                list(map(flags.__setitem__, found, repeat(LIVE | KEPT)))  # all here, none marked yet: in C
                return new + len(set(found))
            rest = []
            for k, i in zip(todo, found):
                if i < 0:
                    rest.append(k)
                elif flags[i]:
                    first.pop(k, None)  # marked before (by another version)
                elif condemned and words[i * WORDS] in condemned:
                    flags[i] = LIVE
                    first.setdefault(k, (flags, i))
                    rest.append(k)
                else:
                    flags[i] = LIVE | KEPT
                    first.pop(k, None)
                    new += 1
            todo = rest
        for k in todo:
            if k in first:
                kept_flags, i = first.pop(k)
                kept_flags[i] = LIVE | KEPT
                new += 1
            else:
                digest = raws[k * width : (k + 1) * width].hex()
                if digest not in self.loose:
                    self.loose.add(digest)
                    new += 1
        return new

    def finish(self) -> None:
        """Mark every other copy of a live blob live too (equal digests side by side in a file,
        or in another file): one look per entry not marked yet."""
        for index in self.files:
            flags = self.flags[index.name]
            i = flags.find(0)  # C: a store all live has none
            while i >= 0:
                if self._live_copy(index, i):
                    flags[i] = LIVE
                i = flags.find(0, i + 1)

    def _live_copy(self, index: IndexFile, i: int) -> bool:
        raw = index.digest(i)
        for other in self.files:
            j = other.find(raw)
            if j < 0:
                continue
            flags = self.flags[other.name]
            if any(flags[k] & LIVE for k in other.copies(j)):
                return True
        return False

    def add(self, digest: str) -> bool:
        """Mark a blob live by its hex digest; return whether it was not already."""
        if not self.files:
            if digest in self.loose:
                return False
            self.loose.add(digest)
            return True
        return self.add_raw(bytes.fromhex(digest))

    def __contains__(self, digest: str) -> bool:
        raw = bytes.fromhex(digest)
        for index in self.files:
            i = index.find(raw)
            if i >= 0:
                return bool(self.flags[index.name][i] & LIVE)
        return digest in self.loose

    def live_at(self, index: IndexFile, i: int) -> bool:
        """Tell whether the entry at position ``i`` of ``index`` is live."""
        return bool(self.flags[index.name][i] & LIVE)

    def add_tree(self, root: str, load: Callable[[str], Node]) -> None:
        """Mark a tree's nodes and blobs live; a subtree already marked (another version's) is
        not read again.

        :param load: returns a verified node (raises if it is missing or damaged).
        """
        if not self.add(root):
            return
        stack = [root]
        while stack:
            node = load(stack.pop())
            kinds = node.kinds
            if self.files and kinds.count(FILE) == len(kinds):  # files only: their digests as one column
                self.add_column(bytes.fromhex("".join(node.digests)))
                continue
            for i, kind in enumerate(kinds):
                if kind in NODE_KINDS:
                    if self.add(node.digests[i]):
                        stack.append(node.digests[i])
                else:
                    for digest, _ in item_blobs(node, i):
                        self.add(digest)
