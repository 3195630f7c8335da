"""Artifact drafts, and every bad input on the way into the store: each gets a clear PlaitError
and leaves the store exactly as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blobview import Blobs

import plait
from plait import (
    Artifact,
    ConversionError,
    FileChangedError,
    InvalidMetadataError,
    InvalidNameError,
    InvalidPathError,
    NotFoundError,
    PlaitError,
    SourceError,
    Store,
    UnsupportedStoreError,
)
from plait.storage import digest as digest_mod
from plait.storage import packed


@pytest.fixture
def seeded(store: Store, make_files) -> Store:
    """A store holding ``ds:v0`` (a.txt, b/c.txt) with alias ``prod``."""
    store.log(make_files({"a.txt": "alpha", "b/c.txt": "gamma"}, folder="seed"), name="ds", aliases=["prod"])
    return store


# -- building drafts ---------------------------------------------------------------------------


def test_add_dir_records_paths_relative_to_the_folder(store: Store, make_files) -> None:
    folder = make_files({"x/1.txt": "1", "x/deep/2.txt": "22", "top.txt": "3"})
    draft = Artifact("images", type="dataset", description="raw scans", metadata={"source": "lab"})
    draft.add_dir(folder).add_bytes(b"bytes!", "extra/b.bin").add_json({"b": 1, "a": [1, 2]}, "meta.json")
    v = store.log(draft)
    assert [(e.path, e.size) for e in v.files()] == [
        ("extra/b.bin", 6), ("meta.json", 40), ("top.txt", 1), ("x/1.txt", 1), ("x/deep/2.txt", 2)]
    assert v.read_bytes("meta.json") == b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert (v.type, v.description, dict(v.metadata)) == ("dataset", "raw scans", {"source": "lab"})


def test_add_dir_with_a_prefix_and_add_file_under_a_name(store: Store, make_files) -> None:
    folder = make_files({"1.txt": "1"})
    labels = folder.parent / "labels.csv"
    labels.write_text("id,label\n")
    v = store.log(Artifact("ds").add_dir(folder, prefix="imgs").add_file(labels).add_file(labels, name="meta/labels.csv"))
    assert [e.path for e in v.files()] == ["imgs/1.txt", "labels.csv", "meta/labels.csv"]


def test_a_path_logs_as_a_file_or_a_folder(store: Store, make_files) -> None:
    folder = make_files({"a.txt": "A", "sub/b.txt": "B"})
    v = plait.log(folder, name="images", type="dataset", store=store)
    assert (v.spec, v.type, [e.path for e in v.files()]) == ("images:v0", "dataset", ["a.txt", "sub/b.txt"])
    one = store.log(folder / "a.txt")
    assert (one.name, [e.path for e in one.files()]) == ("a.txt", ["a.txt"])


def test_symlinks_leaving_the_folder_are_refused_unless_asked(store: Store, make_files, tmp_path: Path, listing) -> None:
    folder = make_files({"in.txt": "in"})
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, folder / "link.txt")
    os.symlink(folder / "in.txt", folder / "alias.txt")
    draft = Artifact("ds").add_dir(folder)  # the folder is listed when logged: the link is found then
    with pytest.raises(SourceError, match="outside .*follow_external_symlinks=True"):
        store.log(draft)
    assert listing(store) == {}
    v = store.log(Artifact("ds").add_dir(folder, follow_external_symlinks=True))
    assert {e.path: v.read_bytes(e.path) for e in v.files()} == {"alias.txt": b"in", "in.txt": b"in", "link.txt": b"secret"}


def test_a_folder_symlink_leaving_the_folder_is_refused_or_followed_never_dropped(store: Store, make_files, tmp_path: Path) -> None:
    folder = make_files({"in.txt": "in"})
    make_files({"x.txt": "x", "deep/y.txt": "y"}, folder="elsewhere")
    os.symlink(tmp_path / "elsewhere", folder / "ext")
    with pytest.raises(SourceError, match="ext is a symlink to .*elsewhere, outside .*follow_external_symlinks=True"):
        store.log(Artifact("ds").add_dir(folder))
    with pytest.raises(SourceError, match="ext is a symlink to .*elsewhere, outside"):
        assert Artifact("ds").add_dir(folder).sources  # asking for the list walks it too
    v = store.log(Artifact("ds").add_dir(folder, follow_external_symlinks=True))
    assert [e.path for e in v.files()] == ["ext/deep/y.txt", "ext/x.txt", "in.txt"]


@pytest.mark.parametrize("follow", [False, True])
def test_a_symlink_loop_in_a_folder_is_one_clear_error(store: Store, make_files, tmp_path: Path, follow: bool, listing) -> None:
    folder = make_files({"a/in.txt": "in"})
    os.symlink(folder, folder / "a" / "up")  # a folder holding itself
    draft = Artifact("ds").add_dir(folder, follow_external_symlinks=follow)  # listed when logged
    with pytest.raises(SourceError, match="up is a symlink to .*a folder that holds it: a loop"):
        store.log(draft)
    os.unlink(folder / "a" / "up")
    os.symlink("p", folder / "a" / "q")
    os.symlink("q", folder / "a" / "p")  # two links pointing at each other
    with pytest.raises(SourceError, match="cannot be resolved .*Too many levels of symbolic links"):
        store.log(draft)
    assert listing(store) == {}


def test_a_file_name_that_is_not_utf8_is_refused_before_anything_is_stored(store: Store, make_files, listing) -> None:
    folder = make_files({"ok.txt": "ok"})
    before = listing(store)
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1 name")
    with pytest.raises(InvalidPathError, match=r"b'caf\\xe9.txt' is not valid UTF-8; rename the file"):
        store.log(folder, name="ds")
    assert listing(store) == before


def test_a_reference_is_recorded_without_copying_the_data(store: Store, make_files, listing, monkeypatch) -> None:
    folder = make_files({"raw/1.csv": "a,b\n", "raw/2.csv": "c,d\n"})
    monkeypatch.setenv("PLAIT_ALLOW_REFERENCES", str(folder))  # local files are read only where this machine allows
    v = store.log(Artifact("raw").add_reference(str(folder / "raw"), name="src"))
    entries = v.files()
    assert [e.path for e in entries] == ["src/1.csv", "src/2.csv"]
    assert all(e.ref is not None and e.ref.uri.endswith(e.path[4:]) and e.ref.mtime for e in entries)
    assert set(Blobs.stored(store, nodes=True)) == {d for d, _ in v.manifest.nodes()}  # its tree only
    assert v.read_bytes("src/2.csv") == b"c,d\n"
    # changing the data at the source changes the version
    (folder / "raw/2.csv").write_text("changed\n")
    assert store.log(Artifact("raw").add_reference(str(folder / "raw"), name="src")).number == 1


def test_a_missing_reference_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nothing exists at .*check the URL"):
        Artifact("ds").add_reference(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="empty folder"):
        Artifact("ds").add_reference(str(tmp_path / "empty"))


# -- bad input changes nothing -----------------------------------------------------------------


def test_invalid_names_and_types_are_refused(seeded: Store, make_files, listing) -> None:
    before = listing(seeded)
    folder = make_files({"a.txt": "new content"})
    with pytest.raises(InvalidNameError, match="'bad name' is not allowed"):
        Artifact("bad name")
    with pytest.raises(InvalidNameError, match="artifact type 'a type' is not allowed"):
        Artifact("ok", type="a type")
    with pytest.raises(InvalidNameError, match="'../up' is not allowed"):
        seeded.log(folder, name="../up")
    with pytest.raises(InvalidNameError, match="looks like a version number"):
        seeded.log(folder, name="ds", aliases=["v9"])
    with pytest.raises(InvalidNameError, match="cannot be set by hand"):
        seeded.get("ds").set_alias("latest")
    assert listing(seeded) == before


def test_invalid_specs_are_refused(seeded: Store, listing) -> None:
    before = listing(seeded)
    for spec in ("ds:", "ds:a b", "bad name", "ds:v1:v2"):
        with pytest.raises(InvalidNameError):
            seeded.get(spec)
    with pytest.raises(InvalidNameError):
        plait.diff("ds:v0", "ds::", store=seeded)
    assert listing(seeded) == before


def test_unknown_names_versions_and_aliases_list_what_exists(seeded: Store, listing) -> None:
    seeded.log(Artifact("other").add_bytes(b"x", "x"))
    before = listing(seeded)
    with pytest.raises(NotFoundError, match=r"no artifact named 'nope' in .* \(artifacts: ds, other\)") as info:
        seeded.get("nope")
    assert info.value.candidates == ["ds", "other"]
    with pytest.raises(NotFoundError, match=r"'ds' has no version v5 \(it has v0, aliases: prod\)"):
        seeded.get("ds:v5")
    with pytest.raises(NotFoundError, match=r"'ds' has no alias 'staging' \(it has v0, aliases: prod\)") as info:
        seeded.get("ds:staging")
    assert info.value.candidates == ["v0", "prod"]
    with pytest.raises(NotFoundError, match="no artifact named 'nope'"):
        seeded.versions("nope")
    with pytest.raises(NotFoundError, match=r"ds:v0 has no file 'zzz.txt' \(it has a.txt, b/c.txt\)"):
        seeded.get("ds").open("zzz.txt")
    with pytest.raises(NotFoundError, match="has no alias 'unset'"):
        seeded.get("ds").remove_alias("unset")
    assert listing(seeded) == before


def test_bad_input_to_a_new_store_does_not_even_create_it(store: Store, make_files, tmp_path: Path, listing) -> None:
    folder = make_files({"a.txt": "a"})
    with pytest.raises(InvalidNameError):
        store.log(folder, name="bad name")
    with pytest.raises(SourceError):
        store.log(tmp_path / "missing", name="ds")
    with pytest.raises(InvalidMetadataError):
        store.log(folder, name="ds", metadata={"x": object()})
    draft = Artifact("ds").add_file(folder / "a.txt")
    (folder / "a.txt").unlink()
    with pytest.raises(SourceError):
        store.log(draft)
    assert listing(store) == {}


def test_an_empty_store_says_it_has_no_artifacts_yet(store: Store, listing) -> None:
    with pytest.raises(NotFoundError, match=r"\(artifacts: none yet\)"):
        store.get("images:latest")
    assert listing(store) == {}


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/passwd", "C:\\evil.txt", "d:evil.txt"])
def test_escaping_paths_in_add_file_are_refused(seeded: Store, make_files, name: str, listing) -> None:
    before = listing(seeded)
    path = make_files({"f.txt": "f"}) / "f.txt"
    with pytest.raises(InvalidPathError) as info:
        Artifact("ds").add_file(path, name=name)
    assert info.value.path == name
    with pytest.raises(InvalidPathError):
        Artifact("ds").add_bytes(b"x", name)
    with pytest.raises(InvalidPathError):
        Artifact("ds").add_dir(path.parent, prefix=name)
    assert listing(seeded) == before


def test_missing_files_and_folders_are_refused(seeded: Store, tmp_path: Path, listing) -> None:
    before = listing(seeded)
    with pytest.raises(SourceError, match="it is not an existing file"):
        Artifact("ds").add_file(tmp_path / "missing.txt")
    with pytest.raises(SourceError, match="it is a folder; use add_dir"):
        Artifact("ds").add_file(tmp_path)
    with pytest.raises(SourceError, match="not an existing folder"):
        Artifact("ds").add_dir(tmp_path / "missing")
    with pytest.raises(SourceError, match="missing does not exist: give an existing file or folder"):
        seeded.log(str(tmp_path / "missing"), name="ds")
    with pytest.raises(ConversionError, match="does not know how to log a object"):
        seeded.log(object(), name="ds")
    assert listing(seeded) == before


def test_a_file_that_vanished_before_logging_is_refused(seeded: Store, make_files, listing) -> None:
    folder = make_files({"a.txt": "a", "b.txt": "b"})
    draft = Artifact("ds").add_file(folder / "a.txt").add_file(folder / "b.txt")
    (folder / "b.txt").unlink()
    before = listing(seeded)
    with pytest.raises(SourceError, match="b.txt was added to 'ds' but no longer exists") as info:
        seeded.log(draft)
    assert info.value.path == str(folder / "b.txt")
    assert listing(seeded) == before


def test_a_folder_is_listed_when_its_draft_is_logged(seeded: Store, make_files) -> None:
    folder = make_files({"a.txt": "a", "b.txt": "b"})
    draft = Artifact("ds").add_dir(folder)
    (folder / "b.txt").unlink()
    (folder / "c.txt").write_text("c")
    v = seeded.log(draft)
    assert {e.path: v.read_bytes(e.path) for e in v.files()} == {"a.txt": b"a", "c.txt": b"c"}


def test_a_file_replaced_by_a_folder_is_refused(seeded: Store, make_files, listing) -> None:
    folder = make_files({"a.txt": "a"})
    draft = Artifact("ds").add_file(folder / "a.txt")
    (folder / "a.txt").unlink()
    (folder / "a.txt").mkdir()
    before = listing(seeded)
    with pytest.raises(SourceError, match="is a folder"):
        seeded.log(draft)
    assert listing(seeded) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_refused(seeded: Store, make_files, listing) -> None:
    folder = make_files({"a.txt": "a", "locked.txt": "secret"})
    (folder / "locked.txt").chmod(0)
    before = listing(seeded)
    with pytest.raises(SourceError, match="cannot be read: permission denied"):
        seeded.log(folder, name="ds")
    assert listing(seeded) == before


def test_an_unreadable_folder_is_refused(seeded: Store, make_files, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_files({"sub/a.txt": "a"})
    real = os.scandir

    def scandir(path):  # the OS refusing to list a folder (root ignores chmod, so raise what it would)
        if os.fspath(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    draft = Artifact("ds").add_dir(folder)  # listed when logged
    with pytest.raises(SourceError, match="cannot read folder .*sub: permission denied"):
        seeded.log(draft)


def test_a_file_that_changes_while_it_is_hashed_is_refused(seeded: Store, make_files, monkeypatch: pytest.MonkeyPatch, listing) -> None:
    folder = make_files({"a.txt": "a" * 1000, "growing.log": "line\n" * 100})
    real = digest_mod._digest_whole

    def digest_while_writing(f, algorithm, on_bytes):
        result = real(f, algorithm, on_bytes)
        if f.name.endswith("growing.log"):
            with open(f.name, "ab") as w:  # another process appends while plait reads
                w.write(b"one more line\n")
        return result

    monkeypatch.setattr(digest_mod, "_digest_whole", digest_while_writing)
    real_small = packed.read_small  # a packed store reads a small file once, to hash and store it

    def read_while_writing(path, key):
        if path.endswith("growing.log"):
            with open(path, "ab") as w:  # another process appends while plait reads
                w.write(b"one more line\n")
        return real_small(path, key)

    monkeypatch.setattr(packed, "read_small", read_while_writing)
    before = listing(seeded)
    with pytest.raises(FileChangedError, match="growing.log changed while it was being read; log it again"):
        seeded.log(folder, name="logs")
    assert listing(seeded) == before


def test_non_json_metadata_is_refused(seeded: Store, make_files, listing) -> None:
    before = listing(seeded)
    folder = make_files({"a.txt": "other"})
    with pytest.raises(InvalidMetadataError, match="must be JSON-serializable"):
        Artifact("ds", metadata={"when": object()})
    with pytest.raises(InvalidMetadataError, match="must be JSON-serializable"):
        seeded.log(folder, name="ds", metadata={"tags": {"a", "b"}})
    with pytest.raises(InvalidMetadataError, match="must be JSON-serializable"):
        seeded.get("ds").update(metadata={"loss": float("nan")})
    with pytest.raises(InvalidMetadataError, match="the content of x.json must be JSON"):
        Artifact("ds").add_json({"x": b"bytes"}, "x.json")
    assert listing(seeded) == before


LONE = b"\xff".decode("utf-8", "surrogateescape")  # what a shell passes for a byte that is not UTF-8


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("case", ["surrogate in metadata", "surrogate in a key", "surrogate in description",
                                  "nested thousands deep", "metadata over the record limit", "description over the limit"])
def test_what_a_reader_could_not_read_back_is_refused_before_anything_is_stored(seeded: Store, make_files, listing, case: str) -> None:
    """Every version logged must be readable by a fresh index: nothing is stored for a record that would not be."""
    before = listing(seeded)
    folder = make_files({"new.txt": "new bytes"}, folder="fresh")
    kwargs = {
        "surrogate in metadata": {"metadata": {"note": f"caf{LONE}"}},
        "surrogate in a key": {"metadata": {f"k{LONE}": 1}},
        "surrogate in description": {"description": f"bad {LONE} text"},
        "nested thousands deep": {"metadata": {"deep": _nested(5000)}},
        "metadata over the record limit": {"metadata": {"blob": "x" * (17 << 20)}},
        "description over the limit": {"description": "d" * (2 << 20)},
    }[case]
    match = {"surrogate in metadata": r"metadata\['note'\] is not valid UTF-8 \(bytes b'\\xff'",
             "surrogate in a key": "is not valid UTF-8",
             "surrogate in description": r"description of 'ds' is not valid UTF-8 \(bytes b'\\xff' at character 4\)",
             "nested thousands deep": "nests more than 64 levels deep; flatten it",
             "metadata over the record limit": "a record holds at most 16,777,216",
             "description over the limit": "description: String should have at most 1048576 characters"}[case]
    with pytest.raises(InvalidMetadataError, match=match):
        seeded.log(folder, name="ds", **kwargs)
    assert listing(seeded) == before
    assert Store(seeded.url).reindex() == 1 and seeded.verify().ok


def test_an_edit_a_reader_could_not_read_back_is_refused(seeded: Store, listing) -> None:
    before = listing(seeded)
    version = seeded.get("ds")
    with pytest.raises(InvalidMetadataError, match="is not valid UTF-8"):
        version.update(description=f"x{LONE}")
    with pytest.raises(InvalidMetadataError, match="nests more than"):
        version.update(metadata={"deep": _nested(200)})
    with pytest.raises(InvalidMetadataError, match="a record holds at most"):
        version.update(metadata={"big": "y" * (17 << 20)})
    with pytest.raises(InvalidMetadataError, match="is not valid UTF-8"):
        with plait.run("r", config={"lr": LONE}, store=seeded):
            pass
    assert listing(seeded) == before


def test_add_bytes_takes_only_bytes() -> None:
    with pytest.raises(TypeError, match="add_bytes\\(\\) takes bytes, not str"):
        Artifact("ds").add_bytes("text", "x.txt")  # type: ignore[arg-type]


def test_unknown_store_protocols_are_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedStoreError, match="unknown store protocol 'nope'"):
        Store("nope://bucket/x")
    with pytest.raises(UnsupportedStoreError, match=r"pip install 'plait\[gcs\]'"):
        Store("gs://bucket/prefix")
    with pytest.raises(UnsupportedStoreError, match=r"pip install 'plait\[azure\]'"):
        Store("az://container/prefix")
    assert issubclass(UnsupportedStoreError, PlaitError)
    assert os.listdir(tmp_path) == [] or set(os.listdir(tmp_path)) <= {"_cache"}
