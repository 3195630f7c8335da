"""Tree nodes: canonical columnar bytes, sharding of large folders, and refusal of hostile nodes."""

from __future__ import annotations

import struct

import pytest
import xxhash

from plait.errors import CorruptRecordError
from plait.formats.reference import Reference
from plait.formats.tree import (
    CHUNKED,
    FILE,
    FOLDER,
    REFERENCE,
    SHARD,
    SHARD_ABOVE,
    SHARD_MAX,
    build_folder,
    child_key,
    decode_node,
    encode_node,
)
from plait.formats.treeview import FileList, TreeManifest


def h(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode())


class Nodes:
    """An in-memory node store: ``put`` as the blob API stores a node, ``load`` as the store reads one."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.reads: list[str] = []

    def put(self, data: bytes) -> str:
        digest = h_bytes(data)
        self.data[digest] = data
        return digest

    def load(self, digest: str):
        self.reads.append(digest)
        if digest not in self.data:
            raise CorruptRecordError(f"tree node {digest} is missing", key=digest)
        return decode_node(self.data[digest], digest)


def h_bytes(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def tree_of(files: dict[str, int], nodes: Nodes) -> str:
    """Build the tree of ``{path: size}`` (digest = hash of the path) the way a log does; return its root."""
    folders: dict[str, list] = {"": []}
    for path in files:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folders.setdefault("/".join(parts[:depth]), [])
    for path, size in files.items():
        folders[path.rpartition("/")[0]].append((path.rpartition("/")[2], FILE, size, h(path), None))
    for folder in sorted(folders, key=lambda p: -p.count("/") if p else 1):
        children = sorted(folders[folder], key=lambda c: child_key(c[0], c[1]))
        digest, size, count = build_folder(children, 16, nodes.put)
        if folder:
            folders[folder.rpartition("/")[0]].append((folder.rpartition("/")[2], FOLDER, size, digest, count))
        else:
            return digest
    raise AssertionError


def test_a_node_round_trips_every_kind_of_entry() -> None:
    ref = Reference(uri="s3://bucket/key", etag="abc")
    chunks = ((h("c1"), 3), (h("c2"), 4))
    children = [("a", FILE, 5, h("a"), None), ("b", CHUNKED, 7, h("b"), chunks), ("c", REFERENCE, 9, h("c"), ref),
                ("d", FOLDER, 100, h("d"), 12)]
    data = encode_node(children, 16)
    node = decode_node(data, h_bytes(data))
    assert node.names == ["a", "b", "c", "d"]
    assert bytes(node.kinds) == bytes([FILE, CHUNKED, REFERENCE, FOLDER])
    assert node.sizes == (5, 7, 9, 100)
    assert node.digests == [h("a"), h("b"), h("c"), h("d")]
    assert node.chunks == {1: chunks} and node.refs == {2: ref} and node.counts == {3: 12}
    assert encode_node(children, 16) == data  # canonical


def test_equal_files_make_equal_roots_whatever_the_order_they_come_in() -> None:
    files = {"b/x": 1, "a": 2, "b/y/z": 3, "a-c": 4}
    one, two = Nodes(), Nodes()
    assert tree_of(files, one) == tree_of(dict(reversed(list(files.items()))), two)


def test_a_tree_streams_its_files_in_the_order_of_their_paths() -> None:
    files = {"a-c": 1, "a/b": 2, "a/c/d": 3, "a0": 4, "b": 5}
    nodes = Nodes()
    tree = TreeManifest(tree_of(files, nodes), "xxh3-128", nodes.load)
    assert [e.path for e in tree] == sorted(files)
    assert len(tree) == 5 and tree.size == 15
    assert tree.get("a/c/d").size == 3 and tree.get("a/c") is None and tree.get("nope") is None
    assert [e.path for e in FileList(tree)[1:3]] == ["a/b", "a/c/d"]
    assert FileList(tree)[-1].path == "b"


def test_len_and_the_first_files_read_only_the_nodes_they_need() -> None:
    files = {f"d{i:03d}/f{j}": 1 for i in range(50) for j in range(10)}
    nodes = Nodes()
    root = tree_of(files, nodes)
    tree = TreeManifest(root, "xxh3-128", nodes.load)
    assert len(FileList(tree)) == 500 and nodes.reads == [root]
    assert [e.path for e in FileList(tree)[:3]] == ["d000/f0", "d000/f1", "d000/f2"]
    assert len(nodes.reads) == 2  # the root and the first folder


def test_a_large_folder_is_cut_into_shards_and_one_new_name_changes_one_shard() -> None:
    n = SHARD_ABOVE * 3
    files = {f"big/f{i:06d}": 1 for i in range(n)}
    nodes = Nodes()
    root = tree_of(files, nodes)
    tree = TreeManifest(root, "xxh3-128", nodes.load)
    big = tree.load(tree.root.digests[0])
    assert big.is_index and all(k == SHARD for k in big.kinds) and len(big) > 1
    assert all(c <= SHARD_MAX for c in big.counts.values()) and sum(big.counts.values()) == n
    assert [e.path for e in tree] == sorted(files)
    assert tree.get("big/f000123").size == 1
    before = set(nodes.data)
    after = Nodes()
    tree_of({**files, "big/f000123x": 1}, after)
    assert len(set(after.data) - before) == 3  # one shard, the folder's index node, the root


@pytest.mark.parametrize(("children", "message"), [
    ([("..", FILE, 1, h("x"), None)], "'..'"),
    ([("a/b", FILE, 1, h("x"), None)], "path separator"),
    ([("a\\b", FILE, 1, h("x"), None)], "path separator"),
    ([("", FILE, 1, h("x"), None)], "''"),
    ([("b", FILE, 1, h("x"), None), ("a", FILE, 1, h("y"), None)], "not sorted"),
    ([("a", FILE, 1, h("x"), None), ("a", FILE, 1, h("y"), None)], "appears twice"),
    ([("a" * 300, FILE, 1, h("x"), None)], "longer than"),
])
def test_a_node_naming_anything_but_one_plain_name_per_entry_is_refused(children, message) -> None:
    data = encode_node(children, 16)
    with pytest.raises(CorruptRecordError, match="malformed") as err:
        decode_node(data, h_bytes(data))
    assert message in str(err.value)


def test_truncated_padded_or_foreign_bytes_are_refused() -> None:
    data = encode_node([("a", FILE, 1, h("x"), None), ("b", CHUNKED, 3, h("y"), ((h("z"), 3),))], 16)
    for bad in (data[:-3], data + b"\0", b"PK" + data[2:], data[:5]):
        with pytest.raises(CorruptRecordError, match="tree node"):
            decode_node(bad, "f" * 32)
    unknown_kind = data[:11] + bytes([9]) + data[12:]
    with pytest.raises(CorruptRecordError, match="unknown entry kind"):
        decode_node(unknown_kind, "f" * 32)
    lying_count = data[:6] + struct.pack("<I", 1 << 30) + data[10:]
    with pytest.raises(CorruptRecordError, match="header"):
        decode_node(lying_count, "f" * 32)
    one_name = encode_node([("a", FILE, 1, h("x"), None), ("b", FILE, 1, h("y"), None)], 16)
    with pytest.raises(CorruptRecordError, match="names run past its end"):
        decode_node(one_name[:-1], "f" * 32)  # the last name lost its \0
    chunks_not_adding_up = encode_node([("b", CHUNKED, 4, h("y"), ((h("z"), 3),))], 16)
    with pytest.raises(CorruptRecordError, match="do not add up"):
        decode_node(chunks_not_adding_up, "f" * 32)


def test_a_drive_letter_at_the_top_or_a_shard_that_lies_about_its_place_is_refused() -> None:
    nodes = Nodes()
    top = nodes.put(encode_node([("c:evil", FILE, 1, h("x"), None)], 16))
    with pytest.raises(CorruptRecordError, match="drive"):
        list(TreeManifest(top, "xxh3-128", nodes.load))
    shard = nodes.put(encode_node([("m", FILE, 1, h("x"), None)], 16))
    index = nodes.put(encode_node([("a", SHARD, 1, shard, 1)], 16))
    with pytest.raises(CorruptRecordError, match="not the shard"):
        list(TreeManifest(index, "xxh3-128", nodes.load))


def test_entries_read_from_a_tree_equal_validated_ones() -> None:
    from plait.formats.manifest import Entry

    ref = Reference(uri="s3://b/k", etag="e")
    for fields in ({"path": "a/b", "digest": h("x"), "size": 3},
                   {"path": "c", "digest": h("y"), "size": 7, "chunks": ((h("1"), 3), (h("2"), 4))},
                   {"path": "r", "digest": h("z"), "size": 1, "ref": ref}):
        fast, checked = Entry.trusted(**fields), Entry(**fields)
        assert fast == checked and fast.model_dump() == checked.model_dump() and hash(fast) == hash(checked)
        assert fast.blobs == checked.blobs and fast.to_dict() == checked.to_dict()
        with pytest.raises(Exception):
            fast.path = "other"  # still frozen
