"""Tree nodes: a version's files as content-addressed nodes, one per folder (or per shard of a
large folder), so that an unchanged folder is reused by its digest and a change rewrites only
the nodes on its path.

A node is canonical, columnar bytes (a handful of C-level joins and splits to encode or decode,
no per-entry Python object)::

    "PTN" ‖ version:u8 ‖ flags:u8 ‖ digest_bytes:u8 ‖ n:u32le
    kinds:   n × u8         0 file, 1 chunked file, 2 folder, 3 shard, 4 reference
    sizes:   n × u64le      a file's size; the bytes below a folder or shard
    digests: n × D          a file's content digest; a folder's or shard's node digest
    names:   n × (utf-8 ‖ \\0)   a shard's name is the key of its first entry
    counts:  for each folder or shard entry, files below it (u64le)
    chunks:  for each chunked file, m:u32le ‖ m × (digest ‖ size:u32le)
    refs:    for each reference, len:u32le ‖ compact JSON of the Reference

Entries are sorted by *key*: the name, with a ``/`` after a folder's. Walking a tree in key
order therefore yields files in the order of their full paths, as a flat manifest lists them.
A node's digest is the hash of these bytes; the root's digest is the version's digest, so equal
trees have equal digests whatever order the files were added in.

A folder of more than :data:`SHARD_ABOVE` entries is cut into shards at content-defined
boundaries (a boundary depends only on the key there), so adding one name to a huge folder
rewrites one shard and the index node above it, not the whole folder.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import compress, islice
from operator import itemgetter, lt
from typing import Any

from plait.errors import CorruptRecordError, InvalidPathError
from plait.formats.reference import Reference

NODE_MAGIC = b"PTN"
NODE_VERSION = 1
FILE, CHUNKED, FOLDER, SHARD, REFERENCE = 0, 1, 2, 3, 4
#: Kinds whose entry points at another node.
NODE_KINDS = (FOLDER, SHARD)
#: A folder with more entries than this is cut into shards.
SHARD_ABOVE = 2048
#: A shard closes at a content-defined boundary once it holds this many entries …
SHARD_MIN = 256
#: … about one key in this many is a boundary …
SHARD_AVG = 1024
#: … and it is cut here whatever the keys.
SHARD_MAX = 4096
#: A node larger than this is refused when read (a crafted node cannot exhaust memory).
MAX_NODE_BYTES = 1 << 28
#: Longest part of a path, in UTF-8 bytes (as :data:`plait.formats.names.MAX_COMPONENT_BYTES`).
MAX_NAME_BYTES = 255

_HEADER = struct.Struct("<3sBBBI")
#: Whether an entry of each kind byte points at another node (a folder or a shard).
_LINKED = bytes(k in NODE_KINDS for k in range(256))
_U32 = struct.Struct("<I")

#: One entry of a node being built: ``(name, kind, size, digest, extra)`` where ``extra`` is the
#: file count (folder, shard), the chunk list (chunked file), the Reference, or ``None``.
Child = tuple[str, int, int, str, Any]


def child_key(name: str, kind: int) -> str:
    """Return the sort key of an entry: its name, with ``/`` after a folder's."""
    return name + "/" if kind == FOLDER else name


def encode_node(children: Sequence[Child], digest_bytes: int) -> bytes:
    """Return the canonical bytes of a node holding ``children`` (sorted by key by the caller).

    :param digest_bytes: the length of the store's digests (16 for xxh3-128, 32 for blake3).
    :raises InvalidPathError: for a digest of another length (entries of another store).
    """
    n = len(children)
    kinds = bytes(c[1] for c in children)
    try:
        digests = bytes.fromhex("".join(c[3] for c in children))
    except ValueError:
        raise InvalidPathError("an entry's digest is not hexadecimal") from None
    if len(digests) != n * digest_bytes:
        raise InvalidPathError(f"every digest of a node must be {digest_bytes} bytes (entries of a store hashing differently?)")
    parts = [_HEADER.pack(NODE_MAGIC, NODE_VERSION, 0, digest_bytes, n), kinds,
             struct.pack(f"<{n}Q", *(c[2] for c in children)), digests,
             "".join(c[0] + "\0" for c in children).encode("utf-8")]
    counts = [c[4] for c in children if c[1] in NODE_KINDS]
    parts.append(struct.pack(f"<{len(counts)}Q", *counts))
    for c in children:
        if c[1] == CHUNKED:
            parts.append(_U32.pack(len(c[4])))
            parts.append(b"".join(bytes.fromhex(d) + _U32.pack(s) for d, s in c[4]))
    for c in children:
        if c[1] == REFERENCE:
            text = json.dumps(c[4].model_dump(mode="json", exclude_none=True), sort_keys=True,
                              separators=(",", ":"), ensure_ascii=False).encode()
            parts.append(_U32.pack(len(text)) + text)
    return b"".join(parts)


@dataclass(frozen=True, eq=False)
class Node:
    """A decoded tree node: its entries as columns.

    :ivar digest: the node's digest.
    :ivar raw_size: the length of its canonical bytes.
    :ivar kinds: one kind byte per entry.
    :ivar sizes: file sizes, or bytes below a folder or shard.
    :ivar digests: content or node digests (hex).
    :ivar names: entry names (a shard's is the key of its first entry).
    :ivar counts: files below each folder or shard entry, by entry index.
    :ivar chunks: the chunk list of each chunked file, by entry index.
    :ivar refs: the reference of each reference entry, by entry index.
    """

    digest: str
    raw_size: int
    kinds: bytes
    sizes: tuple[int, ...]
    digests: list[str]
    names: list[str]
    counts: dict[int, int]
    chunks: dict[int, tuple[tuple[str, int], ...]]
    refs: dict[int, Reference]

    def __len__(self) -> int:
        return len(self.kinds)

    def key(self, i: int) -> str:
        """Return the sort key of entry ``i``."""
        return child_key(self.names[i], self.kinds[i])

    def files(self, i: int) -> int:
        """Return how many files entry ``i`` stands for."""
        return self.counts[i] if self.kinds[i] in NODE_KINDS else 1

    @property
    def is_index(self) -> bool:
        """Whether this node is cut into shards (every entry is a shard)."""
        return bool(self.kinds) and self.kinds[0] == SHARD


def decode_node(data: bytes, digest: str) -> Node:
    """Parse a node's canonical bytes (already checked against ``digest``), refusing anything malformed.

    :raises CorruptRecordError: naming the node and what is wrong with it.
    """
    try:
        return _decode(data, digest)
    except (struct.error, UnicodeDecodeError, ValueError, KeyError, IndexError) as exc:
        if isinstance(exc, CorruptRecordError):
            raise
        raise CorruptRecordError(f"tree node {digest} cannot be read: {exc}; the store is damaged", key=digest) from None


@cache
def _digest_struct(dlen: int) -> struct.Struct:
    return struct.Struct(f"{dlen}s")


def _positions(kinds: bytes, kind: int) -> list[int]:
    """Return where entries of ``kind`` sit (none: one C-level search)."""
    return [i for i, k in enumerate(kinds) if k == kind] if kind in kinds else []


def _bad(digest: str, what: str) -> CorruptRecordError:
    return CorruptRecordError(f"tree node {digest} is malformed: {what}; the store is damaged", key=digest)


def _decode(data: bytes, digest: str) -> Node:
    if len(data) > MAX_NODE_BYTES:
        raise _bad(digest, f"{len(data)} bytes is more than a node can hold")
    magic, version, _flags, dlen, n = _HEADER.unpack_from(data, 0)
    if magic != NODE_MAGIC:
        raise _bad(digest, "it is not a tree node")
    if version != NODE_VERSION:
        raise CorruptRecordError(f"tree node {digest} has format {version}; this plait reads {NODE_VERSION}: upgrade plait", key=digest)
    if dlen not in (16, 32) or n > (len(data) - _HEADER.size) // (9 + dlen + 1):
        raise _bad(digest, "its header does not fit its length")
    p = _HEADER.size
    kinds = data[p:p + n]
    p += n
    if kinds and max(kinds) > REFERENCE:
        raise _bad(digest, f"unknown entry kind {max(kinds)}")
    sizes = struct.unpack_from(f"<{n}Q", data, p)
    p += 8 * n
    digests = list(map(bytes.hex, map(itemgetter(0), _digest_struct(dlen).iter_unpack(data[p:p + dlen * n]))))
    p += dlen * n
    rest = data[p:].split(b"\0", n)[n:] if n else [data[p:]]  # what follows the n-th name's \0
    if not rest:
        raise _bad(digest, "its names run past its end")
    end = len(data) - len(rest[0])
    raw_names = data[p:end - 1] if n else b""
    p = end
    names = raw_names.decode("utf-8").split("\0") if n else []
    _check_names(digest, raw_names, names, kinds)
    linked = list(compress(range(n), map(_LINKED.__getitem__, kinds)))
    counts = dict(zip(linked, struct.unpack_from(f"<{len(linked)}Q", data, p)))
    p += 8 * len(linked)
    chunks: dict[int, tuple[tuple[str, int], ...]] = {}
    for i in _positions(kinds, CHUNKED):
        (m,) = _U32.unpack_from(data, p)
        p += 4
        if m > (len(data) - p) // (dlen + 4):
            raise _bad(digest, f"the chunk list of {names[i]!r} runs past its end")
        rows = [data[p + j * (dlen + 4):p + (j + 1) * (dlen + 4)] for j in range(m)]
        p += m * (dlen + 4)
        chunks[i] = tuple((r[:dlen].hex(), _U32.unpack_from(r, dlen)[0]) for r in rows)
        if sum(s for _, s in chunks[i]) != sizes[i]:
            raise _bad(digest, f"the chunks of {names[i]!r} do not add up to its size")
    refs: dict[int, Reference] = {}
    for i in _positions(kinds, REFERENCE):
        (m,) = _U32.unpack_from(data, p)
        text = data[p + 4:p + 4 + m]
        if len(text) != m:
            raise _bad(digest, f"the reference of {names[i]!r} runs past its end")
        p += 4 + m
        try:
            refs[i] = Reference.model_validate(json.loads(text))
        except Exception:  # pydantic's ValidationError or bad JSON: either way the node is damaged
            raise _bad(digest, f"the reference of {names[i]!r} is not valid") from None
    if p != len(data):
        raise _bad(digest, f"{len(data) - p} bytes follow its last entry")
    if SHARD in kinds and kinds.count(SHARD) != n:
        raise _bad(digest, "it mixes shards with other entries")
    return Node(digest, len(data), kinds, sizes, digests, names, counts, chunks, refs)


def _check_names(digest: str, raw: bytes, names: list[str], kinds: bytes) -> None:
    """Refuse names that are empty, ``.``, ``..``, hold a ``/`` or ``\\``, are too long, or out of order."""
    if not names:
        return
    if b"\\" in raw or (b"/" in raw and any("/" in nm[:-1] or (nm.endswith("/") and k != SHARD)
                                            for nm, k in zip(names, kinds))):
        raise _bad(digest, "an entry name holds a path separator")
    if "" in names or "." in names or ".." in names:
        raise _bad(digest, "an entry is named '', '.' or '..'")
    if max(map(len, raw.split(b"\0"))) > MAX_NAME_BYTES + 1:
        raise _bad(digest, f"an entry name is longer than {MAX_NAME_BYTES} bytes")
    keys = [child_key(nm, k) for nm, k in zip(names, kinds)] if FOLDER in kinds else names
    if not all(map(lt, keys, islice(keys, 1, None))):
        raise _bad(digest, "its entries are not sorted, or a name appears twice")


def shard_cuts(keys: Sequence[str]) -> list[int]:
    """Return where the shards of a large folder end (indices into its sorted keys).

    A boundary depends only on the key there (its hash), so inserting a key moves at most the
    boundaries next to it.
    """
    import xxhash

    cuts, start = [], 0
    for i, key in enumerate(keys):
        size = i + 1 - start
        if size >= SHARD_MAX or (size >= SHARD_MIN and xxhash.xxh3_64_intdigest(key.encode("utf-8")) % SHARD_AVG == 0):
            cuts.append(i + 1)
            start = i + 1
    if start < len(keys):
        cuts.append(len(keys))
    return cuts


def build_folder(children: list[Child], digest_bytes: int, put: Callable[[bytes], str]) -> tuple[str, int, int]:
    """Encode one folder (its children sorted by key), sharding it when large; return
    ``(node digest, bytes below, files below)``.

    :param put: stores a node's bytes and returns its digest (the store's blob API).
    """
    size = sum(c[2] for c in children)
    files = sum(c[4] if c[1] in NODE_KINDS else 1 for c in children)
    while len(children) > SHARD_ABOVE:
        keys = [child_key(c[0], c[1]) for c in children]
        shards: list[Child] = []
        start = 0
        for end in shard_cuts(keys):
            part = children[start:end]
            digest = put(encode_node(part, digest_bytes))
            shards.append((keys[start], SHARD, sum(c[2] for c in part),
                           digest, sum(c[4] if c[1] in NODE_KINDS else 1 for c in part)))
            start = end
        children = shards
    return put(encode_node(children, digest_bytes)), size, files


def digest_bytes_of(algorithm: str) -> int:
    """Return how many bytes a digest of ``algorithm`` takes in a node."""
    return 32 if algorithm == "blake3" else 16
