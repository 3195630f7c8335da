"""References into S3 (the loopback S3 server), on a versioned bucket and on one without versioning.

A versioned bucket pins each object's VersionId: a read returns the logged bytes whatever
happened since. Without versioning the recorded ETag decides: a changed object is refused by
every read path. Logging a prefix costs listing requests only, never a HEAD per object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from plait import (
    Artifact,
    InvalidInputError,
    ReferenceChangedError,
    ReferenceRefusedError,
    SourceError,
    Store,
    diff,
    sync,
)
from plait.cli import main
from plait.storage.s3source import S3Source


@dataclass
class Bucket:
    name: str
    versioned: bool
    fs: object

    @property
    def url(self) -> str:
        return f"s3://{self.name}"

    def put(self, key: str, data: bytes) -> None:
        self.fs.call_s3("put_object", Bucket=self.name, Key=key, Body=data)

    def delete(self, key: str, version_id: str | None = None) -> None:
        self.fs.call_s3("delete_object", Bucket=self.name, Key=key, **({"VersionId": version_id} if version_id else {}))


@pytest.fixture(params=["versioned", "unversioned"])
def bucket(request, s3_fs) -> Bucket:
    """A fresh bucket on the loopback S3 server, with versioning on or off (ids: versioned, unversioned)."""
    name = f"refs-{uuid.uuid4().hex[:12]}"
    s3_fs.call_s3("create_bucket", Bucket=name)
    if request.param == "versioned":
        s3_fs.call_s3("put_bucket_versioning", Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    found = Bucket(name, request.param == "versioned", s3_fs)
    for key, data in (("raw/a.bin", b"aaaa"), ("raw/sub/b.bin", b"bbbb"), ("raw/sub/c.bin", b"cccc")):
        found.put(key, data)
    return found


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """Every S3 request plait's reference code makes, by operation name, in order."""
    made: list[str] = []
    real = S3Source._call

    async def counted(self, method, **kwargs):
        made.append(method)
        return await real(self, method, **kwargs)

    monkeypatch.setattr(S3Source, "_call", counted)
    return made


@pytest.fixture
def reader(file_store: Store, s3_server: str) -> Store:
    """The file store, opened by a reader that allows the loopback endpoint the references were added with."""
    return Store(file_store.url, allow_references=[s3_server])


def test_a_prefix_is_recorded_from_listings_alone(reader: Store, bucket: Bucket, s3_options, s3_server, calls) -> None:
    v = reader.log(Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options=s3_options))
    assert [e.path for e in v.files()] == ["a.bin", "sub/b.bin", "sub/c.bin"]
    listed = "list_object_versions" if bucket.versioned else "list_objects_v2"
    assert calls == ["get_bucket_versioning", listed, listed]  # the first level, then sub/: no HEAD at all
    for entry in v.files():
        ref = entry.ref
        assert ref is not None and ref.etag and ref.uri == f"{bucket.url}/raw/{entry.path}"
        assert (ref.version_id is not None) is bucket.versioned
        assert ref.options == {"client_kwargs.endpoint_url": s3_server}  # where it is; never the key or secret
    calls.clear()
    assert v.read_bytes("sub/b.bin") == b"bbbb"
    assert calls == ["get_object"]  # one GET: the pinned version, or If-Match the ETag


def test_a_same_size_overwrite_reads_the_logged_bytes_or_refuses(reader: Store, bucket: Bucket, s3_options, tmp_path) -> None:
    v = reader.log(Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options=s3_options))
    assert v.read_bytes("a.bin") == b"aaaa"
    bucket.put("raw/a.bin", b"AAAA")
    if bucket.versioned:  # the pinned version still holds the logged bytes
        assert v.read_bytes("a.bin") == b"aaaa"
        assert (Path(v.download(tmp_path / "out")) / "a.bin").read_bytes() == b"aaaa"
        assert v.verify() == [] and reader.verify().ok
    else:
        with pytest.raises(ReferenceChangedError, match=r"raw:v0/a.bin: s3://.*/raw/a.bin changed since it was logged "
                                                        r"\(etag '[0-9a-f]+' -> '[0-9a-f]+'\)"):
            v.read_bytes("a.bin")
        with pytest.raises(ReferenceChangedError, match="etag"):
            v.download(tmp_path / "out")
        assert not any((tmp_path / "out").iterdir())
        assert v.verify() == ["a.bin"]
        assert [(p.path, p.kind) for p in reader.verify().reference_problems] == [("a.bin", "changed")]
    v1 = reader.log(Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options=s3_options))
    assert v1.number == 1 and v1.read_bytes("a.bin") == b"AAAA"
    assert reader.log(Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options=s3_options)).number == 1
    d = diff("raw:v0", "raw:v1", store=reader)
    assert [m[0] for m in d.modified] == ["a.bin"] and d.unchanged == 2 and "etag" in d.details["a.bin"]


def test_delete_and_recreate(reader: Store, bucket: Bucket, s3_options) -> None:
    v = reader.log(Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options=s3_options))
    bucket.delete("raw/sub/c.bin")
    if bucket.versioned:  # a delete marker hides the object; the logged version is still there
        assert v.read_bytes("sub/c.bin") == b"cccc"
        version = v.entry("sub/c.bin").ref.version_id
        bucket.delete("raw/sub/c.bin", version)
        with pytest.raises(ReferenceChangedError, match=f"version {version} of s3://.*/raw/sub/c.bin was deleted"):
            v.read_bytes("sub/c.bin")
    else:
        with pytest.raises(ReferenceChangedError, match="raw:v0/sub/c.bin: s3://.*/raw/sub/c.bin was deleted"):
            v.read_bytes("sub/c.bin")
    assert [(p.path, p.kind) for p in reader.verify().reference_problems] == [("sub/c.bin", "missing")]
    bucket.put("raw/sub/c.bin", b"cccc")  # the same bytes again
    if bucket.versioned:  # a new version: the logged one is gone for good
        with pytest.raises(ReferenceChangedError, match="was deleted"):
            v.read_bytes("sub/c.bin")
    else:  # the same ETag: the object is what was logged
        assert v.read_bytes("sub/c.bin") == b"cccc" and reader.verify().ok


def test_the_store_endpoint_and_your_own_are_followed_a_foreign_one_is_not(
        s3_store: Store, s3_url: str, s3_options, bucket: Bucket, tmp_path, monkeypatch) -> None:
    v = s3_store.log(Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options=s3_options))
    assert v.read_bytes("a.bin") == b"aaaa"  # the store's own endpoint: no allow-list entry needed
    elsewhere = Store(str(tmp_path / "local"))
    sync(s3_store, elsewhere)
    with pytest.raises(ReferenceRefusedError, match="was added with the endpoint http://127.0.0.1:"):
        elsewhere.get("raw:v0").read_bytes("a.bin")
    config = tmp_path / "config.toml"  # your own endpoint for the bucket: followed
    config.write_text(f'[storage."{bucket.url}/"]\nclient_kwargs = {{ endpoint_url = "{s3_options["client_kwargs"]["endpoint_url"]}" }}\n')
    monkeypatch.setenv("PLAIT_CONFIG", str(config))
    assert Store(elsewhere.url).get("raw:v0").read_bytes("a.bin") == b"aaaa"
    dead = Store(elsewhere.url, reference_options={f"{bucket.url}/": {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"},
                                                                     "retries": 1}})
    with pytest.raises(SourceError, match=r"cannot reach s3://.*/raw/a.bin at http://127.0.0.1:9 \(.*\): check the endpoint"):
        dead.get("raw:v0").read_bytes("a.bin")


def test_missing_credentials_are_one_line(bucket: Bucket, s3_server: str, monkeypatch, tmp_path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # fsspec keeps filesystems (and their credentials) per options
    try:
        with pytest.raises(SourceError, match=r"no credentials for s3://.*/raw/ at http://127.0.0.1:\d+: set them"):
            Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options={"client_kwargs": {"endpoint_url": s3_server}})
    finally:
        s3fs.S3FileSystem.clear_instance_cache()  # the next test's filesystems find the credentials again


def test_an_object_deleted_between_listing_and_reading_makes_no_version(reader: Store, bucket: Bucket, s3_options, listing) -> None:
    draft = Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options=s3_options, checksum=True)
    reader.init()
    before = listing(reader)
    bucket.delete("raw/sub/b.bin")
    if bucket.versioned:  # the listed version is still there to read
        v = reader.log(draft)
        assert v.read_bytes("sub/b.bin") == b"bbbb" and all(e.ref.checksum for e in v.files())
        return
    with pytest.raises(ReferenceChangedError, match="raw/sub/b.bin: s3://.*/raw/sub/b.bin was deleted"):
        reader.log(draft)
    assert listing(reader) == before


def test_a_prefix_past_max_objects_stops_listing(bucket: Bucket, s3_options, calls) -> None:
    with pytest.raises(InvalidInputError, match=r"holds more than 2 objects; reference a narrower prefix"):
        Artifact("raw").add_reference(f"{bucket.url}/raw/", storage_options=s3_options, max_objects=2)


def test_the_cli_lists_references_with_the_store_options_given_after_the_command(s3_url, s3_options, bucket: Bucket) -> None:
    options = ["--store-option", f"client_kwargs.endpoint_url={s3_options['client_kwargs']['endpoint_url']}"]
    runner = CliRunner()
    logged = runner.invoke(main, ["--store", s3_url, "log", f"{bucket.url}/raw/", "--name", "raw", "--reference", *options])
    assert logged.exit_code == 0, logged.output
    got = runner.invoke(main, ["get", "raw:v0", "--store", s3_url, *options, "--json"])
    assert got.exit_code == 0, got.output
    verified = runner.invoke(main, ["verify", "--store", s3_url, *options])
    assert verified.exit_code == 0 and "3 references" in verified.output


def test_sync_takes_options_for_each_side(s3_url, s3_options, file_store: Store, tmp_path) -> None:
    endpoint = s3_options["client_kwargs"]["endpoint_url"]
    file_store.log(b"rows\n", name="data")
    result = CliRunner().invoke(main, ["--store", file_store.url, "sync", "--to", s3_url, "--to-option",
                                       f"client_kwargs.endpoint_url={endpoint}"])
    assert result.exit_code == 0, result.output
    back = CliRunner().invoke(main, ["--store", str(tmp_path / "other"), "sync", "--from", s3_url, "--from-option",
                                     f"client_kwargs.endpoint_url={endpoint}"])
    assert back.exit_code == 0, back.output
    assert Store(str(tmp_path / "other")).get("data:v0").read_bytes("data") == b"rows\n"
    bad = CliRunner().invoke(main, ["--store", file_store.url, "sync", "--to", s3_url, "--from-option", "a=1"])
    assert bad.exit_code == 2 and "--from-option with --from" in bad.output


def _fill(s3_fs, count: int, per_folder: int = 1000, versioned: bool = False) -> str:
    """Make a bucket holding ``big/<i // per_folder>/<i>.bin`` for ``i < count``; return its name."""
    from moto.s3.models import s3_backends

    name = f"big-{uuid.uuid4().hex[:12]}"
    s3_fs.call_s3("create_bucket", Bucket=name)
    if versioned:
        s3_fs.call_s3("put_bucket_versioning", Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    backend = s3_backends["123456789012"]["aws"]  # the loopback server's own storage: 10,000 PUTs would take minutes
    for i in range(count):
        backend.put_object(name, f"big/{i // per_folder}/{i:05d}.bin", b"%05d" % i)
    return name


@pytest.mark.parametrize("count, per_folder, pages, verify_pages", [
    (1_200, 1_200, 3, 2),  # the first level, then two pages of its one folder (verify lists that folder)
    pytest.param(3_000, 1_000, 4, 4, marks=pytest.mark.slow),  # the first level, then a page of each of three folders
])
def test_a_large_prefix_is_logged_and_verified_with_listings_only(reader: Store, s3_fs, s3_options, calls, count,
                                                                  per_folder, pages, verify_pages) -> None:
    name = _fill(s3_fs, count, per_folder)
    v = reader.log(Artifact("big").add_reference(f"s3://{name}/big/", storage_options=s3_options))
    assert v.file_count == count and calls == ["get_bucket_versioning"] + ["list_objects_v2"] * pages
    calls.clear()
    report = reader.verify()
    assert report.ok and report.references == count and calls == ["list_objects_v2"] * verify_pages


@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_verify_finds_what_changed_below_a_prefix_in_one_listing(reader: Store, s3_fs, s3_options, calls, versioned) -> None:
    name = _fill(s3_fs, 200, versioned=versioned)
    v = reader.log(Artifact("big").add_reference(f"s3://{name}/big/", storage_options=s3_options))
    s3_fs.call_s3("put_object", Bucket=name, Key="big/0/00030.bin", Body=b"xxxxx")
    s3_fs.call_s3("delete_object", Bucket=name, Key="big/0/00070.bin")
    calls.clear()
    problems = reader.verify().reference_problems
    if not versioned:
        assert [(p.path, p.kind) for p in problems] == [("0/00030.bin", "changed"), ("0/00070.bin", "missing")]
        assert calls == ["list_objects_v2", "head_object"]  # one listing; only the unlisted object is looked up
        return
    assert problems == [] and calls == ["list_object_versions"]  # the pinned versions are all still there
    pinned = v.entry("0/00070.bin").ref.version_id
    s3_fs.call_s3("delete_object", Bucket=name, Key="big/0/00070.bin", VersionId=pinned)
    calls.clear()
    assert [(p.path, p.kind) for p in reader.verify().reference_problems] == [("0/00070.bin", "missing")]
    assert calls == ["list_object_versions", "head_object"]
