"""Reading a reference returns exactly the bytes that were logged, or one clear ReferenceChangedError —
the same answer from ``open``, ``download``, ``verify`` and the CLI — for local files and HTTP.
(S3 has its own module; what a reader refuses to follow is in test_reference_trust.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from blobview import Blobs
from click.testing import CliRunner

import plait
from plait import Artifact, InvalidInputError, NotFoundError, ReferenceChangedError, Store
from plait.cli import main


@pytest.fixture
def raw(make_files) -> Path:
    return make_files({"raw/a.csv": "a,1\n", "raw/b.csv": "b,2\n", "raw/sub/c.csv": "c,3\n"})


@pytest.fixture
def allowed(file_store: Store, raw: Path) -> Store:
    """The file store, opened by a reader that allows the folder the references are in."""
    return Store(file_store.url, allow_references=[str(raw)])


def every_read_path_says(store: Store, spec: str, path: str, message: str, tmp_path: Path) -> None:
    """open, download, ArtifactVersion.verify, Store.verify and `plait get` all give one answer."""
    v = store.get(spec)
    with pytest.raises(ReferenceChangedError, match=message) as info:
        v.read_bytes(path)
    assert info.value.version == spec and info.value.path == path and info.value.changes
    with pytest.raises(ReferenceChangedError, match=message):
        v.download(tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())
    assert path in v.verify()
    report = store.verify(spec)
    assert report.exit_code == 5 and path in [p.path for p in report.reference_problems]
    result = CliRunner().invoke(main, ["--store", store.url, "get", spec, str(tmp_path / "out"),
                                       *[a for p in store.user_settings.allow for a in ("--allow-reference", p)]])
    assert result.exit_code == 5 and "changed since it was logged" in result.output or "was deleted" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_local_reference_records_size_mtime_and_inode(allowed: Store, raw: Path, listing) -> None:
    v = allowed.log(Artifact("raw").add_reference(str(raw / "raw")))
    entries = {e.path: e for e in v.files()}
    assert sorted(entries) == ["a.csv", "b.csv", "sub/c.csv"]
    st = os.stat(raw / "raw/a.csv")
    ref = entries["a.csv"].ref
    assert ref is not None and ref.uri == f"file://{raw}/raw/a.csv"
    assert (ref.mtime, ref.inode, entries["a.csv"].size) == (str(st.st_mtime_ns), st.st_ino, 4)
    assert set(Blobs.stored(allowed, nodes=True)) == {d for d, _ in v.manifest.nodes()}  # nothing copied
    assert v.read_bytes("sub/c.csv") == b"c,3\n"
    assert sorted(os.listdir(v.download(Path(raw) / "out"))) == ["a.csv", "b.csv", "sub"]
    assert v.verify() == [] and allowed.verify().ok
    before = listing(allowed)
    assert allowed.log(Artifact("raw").add_reference(str(raw / "raw"))).number == 0  # unchanged: no new version
    assert listing(allowed) == before


def test_a_same_size_overwrite_is_caught_everywhere(allowed: Store, raw: Path, tmp_path: Path) -> None:
    v = allowed.log(Artifact("raw").add_reference(str(raw / "raw")))
    assert v.read_bytes("a.csv") == b"a,1\n"  # now in the cache, under its identity
    st = os.stat(raw / "raw/a.csv")
    (raw / "raw/a.csv").write_text("A,9\n")
    os.utime(raw / "raw/a.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    every_read_path_says(allowed, "raw:v0", "a.csv", r"raw:v0/a.csv: file://.*a.csv changed since it was logged "
                         r"\(modified \d+ -> \d+\)", tmp_path)
    v1 = allowed.log(Artifact("raw").add_reference(str(raw / "raw")))
    assert v1.number == 1 and v1.read_bytes("a.csv") == b"A,9\n"
    d = plait.diff("raw:v0", "raw:v1", store=allowed)
    assert [m[0] for m in d.modified] == ["a.csv"] and d.unchanged == 2 and "modified" in d.details["a.csv"]


def test_a_replaced_file_with_the_same_size_and_mtime_is_caught_by_its_inode(allowed: Store, raw: Path, tmp_path: Path) -> None:
    allowed.log(Artifact("raw").add_reference(str(raw / "raw")))
    st = os.stat(raw / "raw/b.csv")
    (raw / "raw/b.new").write_text("B,8\n")
    os.utime(raw / "raw/b.new", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(raw / "raw/b.new", raw / "raw/b.csv")
    every_read_path_says(allowed, "raw:v0", "b.csv", r"inode \d+ -> \d+ \(the file was replaced\)", tmp_path)


def test_a_deleted_file_is_reported_missing(allowed: Store, raw: Path, tmp_path: Path) -> None:
    allowed.log(Artifact("raw").add_reference(str(raw / "raw")))
    os.unlink(raw / "raw/sub/c.csv")
    every_read_path_says(allowed, "raw:v0", "sub/c.csv", "was deleted since it was logged", tmp_path)
    assert [(p.path, p.kind) for p in allowed.verify().reference_problems] == [("sub/c.csv", "missing")]


def test_a_checksum_catches_what_the_identity_cannot(allowed: Store, raw: Path, tmp_path: Path) -> None:
    v = allowed.log(Artifact("raw").add_reference(str(raw / "raw"), checksum=True))
    assert all(e.ref is not None and e.ref.checksum for e in v.files())
    st = os.stat(raw / "raw/a.csv")
    with open(raw / "raw/a.csv", "r+b") as f:  # same inode, same size, and the old mtime put back
        f.write(b"Z")
    os.utime(raw / "raw/a.csv", ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ReferenceChangedError, match="its bytes hash to [0-9a-f]+, not the recorded"):
        v.read_bytes("a.csv")
    with pytest.raises(ReferenceChangedError, match="its bytes hash to"):
        v.download(tmp_path / "out")
    assert v.read_bytes("b.csv") == b"b,2\n"


def test_a_relog_with_checksums_reads_only_what_changed(allowed: Store, raw: Path, monkeypatch) -> None:
    from plait.storage.sources import LocalSource

    allowed.log(Artifact("raw").add_reference(str(raw / "raw"), checksum=True))
    (raw / "raw/b.csv").write_text("b,22\n")
    reads: list[str] = []
    real = LocalSource._read

    def counted(self, uri, out, check, version_id, etag):
        reads.append(uri)
        return real(self, uri, out, check, version_id, etag)

    monkeypatch.setattr(LocalSource, "_read", counted)
    v1 = allowed.log(Artifact("raw").add_reference(str(raw / "raw"), checksum=True))
    assert v1.number == 1 and [os.path.basename(u) for u in reads] == ["b.csv"]


def test_the_cache_never_serves_bytes_the_source_no_longer_has(allowed: Store, raw: Path) -> None:
    v = allowed.log(Artifact("raw").add_reference(str(raw / "raw")))
    with v.open("a.csv") as f:
        cached = f.name
    (raw / "raw/a.csv").write_text("changed, longer\n")
    with pytest.raises(ReferenceChangedError):
        v.open("a.csv")
    v1 = allowed.log(Artifact("raw").add_reference(str(raw / "raw")))
    with v1.open("a.csv") as f:
        assert f.read() == b"changed, longer\n" and f.name != cached


def test_the_cli_logs_reads_verifies_and_diffs_references(file_store: Store, raw: Path, tmp_path: Path) -> None:
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["--store", file_store.url, *args])
        assert "Traceback" not in result.output
        return result.exit_code, result.output

    code, out = cli("log", str(raw / "raw"), "--name", "raw", "--reference", "--checksum", "--json")
    assert code == 0 and json.loads(out)["file_count"] == 3
    code, out = cli("get", "raw:v0", str(tmp_path / "out"))
    assert code == 6 and "--allow-reference" in out
    code, out = cli("get", "raw:v0", str(tmp_path / "out"), "--allow-reference", str(raw))  # a global option after the command
    assert code == 0 and (tmp_path / "out/sub/c.csv").read_text() == "c,3\n"
    (raw / "raw/b.csv").write_text("b,22\n")
    code, out = cli("verify", "--allow-reference", str(raw))
    assert code == 5 and "CHANGED raw:v0 b.csv" in out and "FAILED" in out
    code, out = cli("--json", "verify", "--allow-reference", str(raw))
    assert code == 5 and json.loads(out)["reference_problems"][0]["kind"] == "changed"
    assert cli("log", str(raw / "raw"), "--name", "raw", "--reference")[0] == 0
    code, out = cli("diff", "raw:v0", "raw:v1")
    assert code == 0 and "M b.csv (4 B -> 5 B): size 4 -> 5" in out


@pytest.mark.parametrize("args, message", [
    (["--checksum"], "--checksum and --max-objects go with --reference"),
    (["--reference", "--max-objects", "2"], "holds more than 2 objects"),
])
def test_cli_reference_options_refuse_bad_input(file_store: Store, raw: Path, listing, args, message) -> None:
    result = CliRunner().invoke(main, ["--store", file_store.url, "log", str(raw / "raw"), "--name", "raw", *args])
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert listing(file_store) == {}


def test_a_prefix_past_max_objects_adds_nothing(raw: Path) -> None:
    draft = Artifact("raw").add_file(raw / "raw/a.csv")
    with pytest.raises(InvalidInputError, match=r"holds more than 2 objects; .*max_objects=N"):
        draft.add_reference(str(raw / "raw"), max_objects=2)
    assert [s.path for s in draft.sources] == ["a.csv"]


def test_a_missing_or_malformed_reference_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nothing exists at"):
        Artifact("x").add_reference(str(tmp_path / "nope"))
    with pytest.raises(plait.InvalidPathError, match="chained URLs"):
        Artifact("x").add_reference("simplecache::s3://bucket/x")
    with pytest.raises(plait.SourceError, match="cannot read nosuchscheme:// references here"):
        Artifact("x").add_reference("nosuchscheme://bucket/x")


# -- HTTP ------------------------------------------------------------------------------------------


def test_an_http_reference_is_read_only_as_logged(file_store: Store, http_server, tmp_path: Path) -> None:
    http_server.files["/data/train.csv"] = b"x,y\n1,2\n"
    v = file_store.log(Artifact("web").add_reference(f"{http_server.url}/data/train.csv"))
    ref = v.files()[0].ref
    assert ref is not None and ref.etag and ref.mtime == "2026-12-02T10:00:00+00:00"
    http_server.requests.clear()
    with pytest.raises(plait.ReferenceRefusedError, match="follows http\\(s\\) references only"):
        v.read_bytes("train.csv")
    assert http_server.requests == []
    reader = Store(file_store.url, allow_references=[f"{http_server.url}/data/"])
    assert reader.get("web:v0").read_bytes("train.csv") == b"x,y\n1,2\n"
    assert ("GET", "/data/train.csv") in http_server.requests
    http_server.files["/data/train.csv"] = b"x,y\n3,4\n"  # same size, new ETag
    every_read_path_says(reader, "web:v0", "train.csv", "etag '[0-9a-f]+' -> '[0-9a-f]+'", tmp_path)
    del http_server.files["/data/train.csv"]
    with pytest.raises(ReferenceChangedError, match="was deleted"):
        reader.get("web:v0").download(tmp_path / "out2")


def test_an_http_folder_or_missing_url_is_refused_when_logging(http_server) -> None:
    with pytest.raises(InvalidInputError, match="HTTP has no listing"):
        Artifact("web").add_reference(f"{http_server.url}/data/")
    with pytest.raises(NotFoundError, match="nothing exists at"):
        Artifact("web").add_reference(f"{http_server.url}/nope.csv")


def test_damaged_blobs_outrank_changed_references_in_verify(allowed: Store, raw: Path) -> None:
    version = allowed.log(Artifact("raw").add_reference(str(raw / "raw")).add_bytes(b"stored", "notes.txt"))
    (raw / "raw/a.csv").write_text("changed, longer\n")
    Blobs.flip(allowed, version.entry("notes.txt").digest)
    report = allowed.verify()
    assert [p[1] for p in report.problems if p[0] != "packs"] == ["notes.txt"] and [p.path for p in report.reference_problems] == ["a.csv"]
    assert report.exit_code == 4
    result = CliRunner().invoke(main, ["--store", allowed.url, "verify", "--allow-reference", str(raw)])
    assert result.exit_code == 4 and "DAMAGED raw:v0 notes.txt" in result.output and "CHANGED raw:v0 a.csv" in result.output
